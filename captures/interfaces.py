"""`-D`: the interfaces a capture can open, numbered and flagged as `tcpdump -D` prints them, with
their IPv4 and IPv6 addresses (dumpcap -D -M shows those too)."""

from __future__ import annotations

from .errors import CaptureError
from .libpcap import (
    PCAP_IF_CONNECTION_STATUS,
    PCAP_IF_CONNECTION_STATUS_CONNECTED,
    PCAP_IF_CONNECTION_STATUS_DISCONNECTED,
    PCAP_IF_LOOPBACK,
    PCAP_IF_RUNNING,
    PCAP_IF_UP,
    PCAP_IF_WIRELESS,
    Device,
    PcapError,
    find_all_devices,
)

FLAG_WORDS = ((PCAP_IF_UP, "Up"), (PCAP_IF_RUNNING, "Running"), (PCAP_IF_WIRELESS, "Wireless"))
"""tcpdump's words for pcap_if_t flags, in its order (Loopback comes after them)."""
CONNECTION_WORDS = {
    0: "Unknown",
    PCAP_IF_CONNECTION_STATUS_CONNECTED: "Connected",
    PCAP_IF_CONNECTION_STATUS_DISCONNECTED: "Disconnected",
}
"""The connection status; "not applicable" (loopback, pseudo-devices) says nothing."""


def flag_words(flags: int) -> list[str]:
    """`[Up, Running, Connected]`'s words for a device's flags, as tcpdump -D."""
    words = [word for bit, word in FLAG_WORDS if flags & bit]
    if flags & PCAP_IF_LOOPBACK:
        words.append("Loopback")
    else:
        status = CONNECTION_WORDS.get(flags & PCAP_IF_CONNECTION_STATUS)
        if status is not None:
            words.append(status)
    return words


def describe(number: int, device: Device) -> str:
    """One -D line: `3.lo [Up, Running, Loopback] 127.0.0.1, ::1`."""
    line = f"{number}.{device.name}"
    if device.description:
        line += f" ({device.description})"
    line += f" [{', '.join(flag_words(device.flags)) or 'none'}]"
    if device.addresses:
        line += " " + ", ".join(device.addresses)
    return line


def interface_lines() -> list[str]:
    """The -D listing; CaptureError (one line) when libpcap cannot list the devices."""
    try:
        devices = find_all_devices()
    except PcapError as exc:
        raise CaptureError(str(exc)) from None
    return [describe(n, device) for n, device in enumerate(devices, 1)]
