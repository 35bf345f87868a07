"""The TLS decoder's stream framing on real bytes (captures/samples/tls-keys.pcap): each TCP
segment cut in two at every offset gives the same records, plaintext and findings as the segments
whole (records split over segments wait for the rest with `need`); a stream that ends inside a
record decodes what came before it; and no bytes make it raise (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import TCP
from scapy.utils import rdpcap

from protoscope.decoders.api import Endpoint, FlowContext
from protoscope.decoders.tls.decoder import Direction, TlsDecoder

from .common import TLS, TLS_KEYS, Replay, keylog, truth

CONNECTIONS = truth("tls-keys")["connections"]
PACKETS = rdpcap(str(TLS))


def segments(port: int) -> list[tuple[bool, bytes]]:
    """(from the client, payload) of each TCP segment with data of the connection on `port`."""
    out = []
    for p in PACKETS:
        if TCP in p and port in (p[TCP].sport, p[TCP].dport) and bytes(p[TCP].payload):
            out.append((p[TCP].dport == port, bytes(p[TCP].payload)))
    return out


def test_segments_cut_at_every_offset_decode_the_same() -> None:
    replay = Replay(keylog(path=TLS_KEYS))
    for conn in (CONNECTIONS[0], CONNECTIONS[3], CONNECTIONS[5]):  # GCM, CBC (MAC-then-encrypt), 1.3
        segs = segments(conn["port"])
        whole = replay.run(segs)
        sent = {"client": b"", "server": b""}
        for from_client, _, inner, codes in whole:
            assert codes == ()
            sent["client" if from_client else "server"] += inner
        assert sent == {w: "".join(lines).encode() for w, lines in conn["sent"].items()}
        for k, (from_client, data) in enumerate(segs):
            for cut in range(1, len(data), 17 if len(data) > 400 else 1):
                pieces = [*segs[:k], (from_client, data[:cut]), (from_client, data[cut:]), *segs[k + 1 :]]
                assert replay.run(pieces) == whole, (conn["port"], k, cut)


def test_a_stream_that_ends_inside_a_record_decodes_what_came_before() -> None:
    conn = CONNECTIONS[1]
    segs = segments(conn["port"])
    client = b"".join(d for c, d in segs if c)
    decoder = TlsDecoder()
    full = decoder.decode(client, Direction(), context())
    ends = [p.span[1] for p in full.pdus]
    for cut in range(len(client)):
        result = decoder.decode(client[:cut], Direction(), context())
        whole = [e for e in ends if e <= cut]
        assert [p.span[1] for p in result.pdus] == whole
        assert result.consumed == (whole[-1] if whole else 0)
        if cut > result.consumed:
            start = result.consumed
            header = client[start : min(cut, start + 5)]
            want = 5 if len(header) < 5 else 5 + int.from_bytes(header[3:5], "big")
            assert result.need == want


def context() -> FlowContext:
    return FlowContext(1, "tcp", Endpoint("10.0.0.1", 40000), Endpoint("10.0.0.2", 443), True, 1, 0.0)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000))
def test_no_bytes_make_it_raise(data: bytes) -> None:
    decoder = TlsDecoder()
    decoder.configure({"tls.keylog": keylog(path=TLS_KEYS)})
    result = decoder.decode(data, Direction(), context())
    assert 0 <= result.consumed <= len(data)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 255), st.integers(0, 5))
def test_a_changed_byte_in_a_real_stream_never_raises(where: int, value: int, which: int) -> None:
    conn = CONNECTIONS[which]
    segs = segments(conn["port"])
    k = where % len(segs)
    from_client, data = segs[k]
    data = bytearray(data)
    data[where % len(data)] = value
    out = Replay(keylog(path=TLS_KEYS)).run([*segs[:k], (from_client, bytes(data)), *segs[k + 1 :]])
    assert out  # the records before the change at least
