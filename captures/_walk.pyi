"""Types of the compiled pcap record walk (_walk.c)."""

def pcap_offsets(
    buffer: object, pos: int, stop: int, header_len: int, big_endian: bool, /
) -> tuple[bytes, int]: ...
