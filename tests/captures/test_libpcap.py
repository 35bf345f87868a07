"""libpcap through ctypes: the interface list (-D), the options a live handle is given, refusals,
and the capture process's per-packet path (pcap_dispatch into EPBs), driven from a savefile."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest

from protoscope.captures import libpcap
from protoscope.captures.capturer import Capture
from protoscope.captures.interfaces import describe, flag_words, interface_lines
from protoscope.captures.options import CaptureOptions
from protoscope.captures.writer import enhanced_packet
from tests.conftest import require_root


def test_the_loopback_is_listed_with_its_address() -> None:
    devices = {d.name: d for d in libpcap.find_all_devices()}
    lo = devices["lo"]
    assert lo.flags & libpcap.PCAP_IF_LOOPBACK and "127.0.0.1" in lo.addresses
    assert "any" in devices
    lines = interface_lines()
    assert any(line.split(".", 1)[1].startswith("lo [Up, Running, Loopback] 127.0.0.1") for line in lines)
    assert [line.split(".", 1)[0] for line in lines] == [str(n) for n in range(1, len(lines) + 1)]


def test_flags_read_as_tcpdump_writes_them() -> None:
    up = libpcap.PCAP_IF_UP | libpcap.PCAP_IF_RUNNING
    assert flag_words(up | libpcap.PCAP_IF_CONNECTION_STATUS_CONNECTED) == ["Up", "Running", "Connected"]
    assert flag_words(up | libpcap.PCAP_IF_LOOPBACK | libpcap.PCAP_IF_CONNECTION_STATUS) == [
        "Up",
        "Running",
        "Loopback",
    ]
    assert flag_words(libpcap.PCAP_IF_CONNECTION_STATUS) == []
    device = libpcap.Device("any", "Pseudo-device", up | libpcap.PCAP_IF_CONNECTION_STATUS, ())
    assert describe(2, device) == "2.any (Pseudo-device) [Up, Running]"
    assert describe(4, libpcap.Device("ifb0", "", libpcap.PCAP_IF_CONNECTION_STATUS, ())) == "4.ifb0 [none]"


class _Recording:
    """libpcap with its pcap_set_* calls written down (and made)."""

    def __init__(self, lib: Any) -> None:
        self._lib = lib
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self._lib, name)
        if not name.startswith("pcap_set_"):
            return fn

        def call(raw: int, value: int) -> Any:
            self.calls[name] = value
            return fn(raw, value)

        return call


def test_open_live_gives_libpcap_the_options(monkeypatch: pytest.MonkeyPatch) -> None:
    """-s, -p, -B and nanosecond timestamps reach pcap_set_* before pcap_activate."""
    require_root()
    recording = _Recording(libpcap.load())
    monkeypatch.setattr(libpcap, "_lib", recording)
    handle = libpcap.open_live("lo", 1500, False, 4 << 20, 100, "udp port 9")
    try:
        assert handle.snapshot == 1500 and handle.datalink == 1
    finally:
        handle.close()
    assert recording.calls == {
        "pcap_set_snaplen": 1500,
        "pcap_set_promisc": 0,
        "pcap_set_timeout": 100,
        "pcap_set_buffer_size": 4 << 20,
        "pcap_set_tstamp_precision": libpcap.PCAP_TSTAMP_PRECISION_NANO,
    }


def test_refusals_are_one_line() -> None:
    require_root()
    with pytest.raises(libpcap.PcapError) as unknown:
        libpcap.open_live("no-such-if0", 100, True, 1 << 20, 100)
    assert unknown.value.code == libpcap.PCAP_ERROR_NO_SUCH_DEVICE and "\n" not in str(unknown.value)
    with pytest.raises(libpcap.PcapError, match=r"^bad capture filter 'port port': .*syntax error"):
        libpcap.open_live("lo", 100, True, 1 << 20, 100, "port port")


def _savefile(path: Path, frames: list[tuple[int, int, bytes, int]]) -> None:
    """A classic pcap (microseconds) of (seconds, microseconds, data, length on the wire)."""
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for sec, usec, data, wirelen in frames:
        out += struct.pack("<IIII", sec, usec, len(data), wirelen) + data
    path.write_bytes(out)


def test_the_per_packet_path_turns_what_libpcap_hands_over_into_epbs(tmp_path: Path) -> None:
    """The capture process's pcap_dispatch callback, fed from a savefile: each packet becomes the
    EPB writer.enhanced_packet makes (nanosecond time, the data, the length on the wire), with
    the packets of one interface counted for isb_usrdeliv, and --count respected."""
    frames = [(1_700_000_000, 1, b"a" * 60, 60), (1_700_000_001, 999_999, b"b" * 61, 1514), (5, 0, b"", 0)]
    _savefile(tmp_path / "in.pcap", frames)
    capture = Capture(CaptureOptions(("lo",), count=2), tmp_path / "out.pcapng")
    capture.add(libpcap.open_offline(str(tmp_path / "in.pcap")))
    try:
        capture.take()
    finally:
        capture.handles[0].close()
    expected = b"".join(enhanced_packet(0, s * 10**9 + us * 1000, d, w) for s, us, d, w in frames[:2])
    assert bytes(capture.batch) == expected
    assert capture.packets == 2 == capture.delivered[0] and capture.captured[0] == 121
