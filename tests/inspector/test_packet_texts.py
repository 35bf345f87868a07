"""The decoding pass's per-packet texts (Info) and names (protocol), packed to a few bytes a packet,
read back exactly as a dict of str would."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from protoscope.inspector.model import PacketNames, PacketTexts


@given(st.dictionaries(st.integers(0, 199), st.text(max_size=80), max_size=60))
def test_texts_read_back_like_a_dict(entries: dict[int, str]) -> None:
    texts = PacketTexts(200)
    for i in sorted(entries):  # the decoding pass writes in frame order
        texts[i] = entries[i]
    assert len(texts) == len(entries)
    for i in range(200):
        want = entries.get(i)
        got = texts.get(i)
        assert got == (
            want.encode("utf-8", "replace").decode("utf-8", "replace") if want is not None else None
        )


def test_texts_are_cut_at_the_limit_and_stay_valid_utf8() -> None:
    texts = PacketTexts(1)
    texts[0] = "é" * 40000  # 80,000 bytes: cut inside a character
    got = texts.get(0)
    assert got is not None and len(got.encode()) <= PacketTexts.MAX_BYTES + 3


@given(st.dictionaries(st.integers(0, 99), st.sampled_from(["rtp", "stun", "dtls", "grpc", "http2"])))
def test_names_read_back_like_a_dict(entries: dict[int, str]) -> None:
    names = PacketNames(100)
    for i, name in entries.items():
        names[i] = name
    assert [names.get(i) for i in range(100)] == [entries.get(i) for i in range(100)]
    assert sorted(names.values()) == sorted(entries.values())
