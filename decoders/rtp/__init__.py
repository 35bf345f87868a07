"""RTP (RFC 3550, header extensions RFC 8285), RTCP compound packets and SRTCP, and RTP streams."""

from .decoder import RtcpDecoder, RtpDecoder

__all__ = ["RtcpDecoder", "RtpDecoder"]
