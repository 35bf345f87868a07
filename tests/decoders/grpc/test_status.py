"""grpc-status, grpc-message, grpc-timeout and -bin values (status.py)."""

from __future__ import annotations

from protoscope.decoders.grpc.status import (
    binary_value,
    deadline_elapsed,
    grpc_message,
    grpc_timeout,
    parse_status,
)


def test_status_digits_are_ascii() -> None:
    assert parse_status("0") == 0 and parse_status("16") == 16 and parse_status("9999999999") == 9999999999
    # "²" is a digit to str.isdigit() and not to int(): a header made of it is no status
    assert parse_status("\xb2") is None and parse_status("12345678901") is None and parse_status("") is None


def test_message_timeout_and_binary() -> None:
    assert grpc_message("a%20b%E2%80%9C") == "a b\u201c" and grpc_message("bad%zz%") == "bad%zz%"
    assert (
        grpc_timeout("100m") == 0.1 and grpc_timeout("100m\n") == 0.1 and grpc_timeout("123456789S") is None
    )
    assert binary_value("AAH+/w") == b"\x00\x01\xfe\xff" and binary_value("\x00\x01\xfe") == b"\x01\xfe"
    assert binary_value("not base64!") is None


def test_deadline_elapsed_allows_for_the_clients_rounding() -> None:
    """gRPC C-core rounds grpc-timeout up (to whole ms below 1 s, else 3 significant digits): a
    call that ends by RST_STREAM a hair before the header's timeout still ran out of time."""
    assert deadline_elapsed(0.2018, 0.201)  # grpc-edge.pcap: a 0.2 s deadline sent as "201m"
    assert deadline_elapsed(0.2000, 0.201) and deadline_elapsed(9.91, 10.0)
    assert not deadline_elapsed(0.150, 0.201) and not deadline_elapsed(9.5, 10.0)
