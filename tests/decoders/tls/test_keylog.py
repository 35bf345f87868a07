"""The NSS key log reader: every label of the format, and what is not understood is counted."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from protoscope.decoders.tls.keylog import LABELS, KeyLog

RANDOM = "01" * 32


def test_every_label_is_kept_by_client_random() -> None:
    keylog = KeyLog()
    text = "".join(f"{label} {RANDOM} {bytes([n]).hex() * 32}\n" for n, label in enumerate(sorted(LABELS)))
    assert keylog.add_text("# a comment\n\n" + text, "k") == (len(LABELS), 0)
    for n, label in enumerate(sorted(LABELS)):
        assert keylog.get(label, bytes.fromhex(RANDOM)) == bytes([n]) * 32
    assert keylog.sources == ["k"]


def test_lines_not_understood_are_skipped_and_counted() -> None:
    keylog = KeyLog()
    bad = [
        f"CLIENT_RANDOM {RANDOM}",  # no secret
        f"CLIENT_RANDOM zz{RANDOM[2:]} {'00' * 48}",  # not hex
        f"CLIENT_RANDOM {RANDOM[:-2]} {'00' * 48}",  # 31-byte random
        f"CLIENT_RANDOM {RANDOM} {'00' * 65}",  # longer than any secret
        f"CLIENT_RANDOM {RANDOM} {'00' * 48} extra",
    ]
    assert keylog.add_text("\n".join(bad)) == (0, len(bad))
    assert not keylog and keylog.skipped == len(bad)


def test_text_round_trips(tmp_path: Path) -> None:
    keylog = KeyLog()
    keylog.add_text(f"CLIENT_RANDOM {RANDOM} {'ee' * 48}\nEXPORTER_SECRET {RANDOM} {'ff' * 32}\n")
    path = tmp_path / "k.keys"
    path.write_text(keylog.text())
    again = KeyLog()
    assert again.add_text(path.read_text(), str(path)) == (2, 0)
    assert again.secrets == keylog.secrets


@given(st.text())
def test_any_text_never_raises(text: str) -> None:
    keylog = KeyLog()
    kept, skipped = keylog.add_text(text)
    assert kept + skipped <= len(text.splitlines())


def test_labels_understood_but_not_needed_are_not_counted_as_skipped() -> None:
    keylog = KeyLog()
    lines = [f"RSA {'ab' * 8} {'00' * 48}", f"CLIENT_TRAFFIC_SECRET_1 {RANDOM} {'11' * 32}"]
    lines.append(f"SERVER_TRAFFIC_SECRET_12 {RANDOM} {'22' * 32}")
    assert keylog.add_text("\n".join(lines)) == (0, 0)
    assert keylog.unused == 3 and keylog.given and not keylog
