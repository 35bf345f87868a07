"""gRPC paths learnt per call, so that grpc.path, grpc.service and grpc.method are known on every
packet of a call, not only on the one that carries its request headers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class _GrpcPaths:
    """(flow, HTTP/2 stream) -> the gRPC call's :path, learnt from request headers in frame order,
    so that the call's later packets (messages, response headers, trailers) know it too."""

    paths: dict[tuple[int, int], str] = field(default_factory=dict)
    last: int = -1

    def see(self, flow: int, index: int, pdus: Sequence[Any]) -> list[str]:
        """Learn from one packet's PDUs and return the paths of its calls; called once per packet
        in frame order (a packet at or before the last one seen starts a new pass)."""
        if not pdus:
            return []
        from protoscope.decoders.grpc.path import GRPC_PATH, request_path
        from protoscope.decoders.http2.records import FrameRecord, MessageRecord

        if index <= self.last:  # a new pass from the start: what the last one learnt is stale
            self.paths.clear()
        self.last = index
        found: list[str] = []
        for pdu in pdus:
            rec = pdu.record
            if isinstance(rec, FrameRecord):
                stream = rec.block_stream or rec.stream_id
                if rec.headers:
                    path, _ = request_path(rec.headers)
                    grpc = any(
                        h.name == "content-type" and h.value.startswith("application/grpc")
                        for h in rec.headers
                    )
                    if path is not None and (grpc or GRPC_PATH.fullmatch(path)):
                        self.paths[(flow, stream)] = path
                known = self.paths.get((flow, stream))
            elif isinstance(rec, MessageRecord):
                known = self.paths.get((flow, rec.stream_id))
            else:
                continue
            if known is not None and known not in found:
                found.append(known)
        return found
