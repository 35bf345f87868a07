"""One packet's fields by Wireshark name (`PacketFields`), computed lazily: what a filter reads
where the columns leave its answer open, and what colouring and `-T fields` read."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..fields import TCP_FLAG_FIELDS, field_info
from .columns import _Context, _context
from .literals import _number

if TYPE_CHECKING:
    from ..session import PacketDecode


class PacketFields(Mapping[str, Sequence[object]]):
    """One packet's fields by Wireshark name, each computed on first access: frame facts from
    the records, L2-L4 from the packet's dissection, decoder fields from its PDUs, virtual ones
    from the session's context. A filter that reads three fields costs three fields."""

    def __init__(
        self, ctx: _Context, index: int, pd: PacketDecode | None = None, grpc: Sequence[str] = ()
    ) -> None:
        self.ctx = ctx
        self.index = index
        self.pd = pd
        self._grpc = grpc
        """The gRPC paths of this packet's calls (`_GrpcPaths.see`, called in frame order)."""
        self._link: dict[str, list[object]] | None = None
        self._layers: list[Any] = []
        self._decoded: dict[str, list[object]] | None = None
        self._cache: dict[str, list[object]] = {}

    def __getitem__(self, name: str) -> Sequence[object]:
        got = self._cache.get(name)
        if got is None:
            got = self._cache[name] = self._compute(name)
        if not got:
            raise KeyError(name)
        return got

    def __iter__(self) -> Iterator[str]:
        names = [*self._link_fields(), *self._decoder_fields()]
        names += ["frame.number", "frame.len", "frame.cap_len", "frame.time_epoch", "frame.time_relative"]
        names += ["frame.time_delta", "frame.protocols", "frame"]
        return iter(dict.fromkeys(n for n in names if self.get(n)))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def _link_fields(self) -> dict[str, list[object]]:
        if self._link is None:
            out: dict[str, list[object]] = {}
            d = self.ctx.ix.dissect(self.index)
            for layer in d.layers:
                for key, value in layer.fields.items():
                    out.setdefault(key, []).append(value)
            self._link = out
            self._layers = d.layers
        return self._link

    def _decoder_fields(self) -> dict[str, list[object]]:
        if self._decoded is None:
            out: dict[str, list[object]] = {}
            if self.pd is not None:
                # Depth first in the tree's order: values come out as tshark lists them (-T fields).
                stack = [f for p in self.pd.pdus for f in p.fields]
                stack.reverse()
                while stack:
                    f = stack.pop()
                    out.setdefault(f.name, []).append(f.value)
                    stack.extend(reversed(f.children))
            self._decoded = out
        return self._decoded

    def _frame(self) -> bytes:
        return bytes(self.ctx.ix.frame(self.index))

    def _compute(self, name: str) -> list[object]:
        ctx, i = self.ctx, self.index
        ix = ctx.ix
        rec = ix.records
        if name == "frame":
            return [self._frame()]
        if name == "frame.number":
            return [i + 1]
        if name == "frame.len":
            return [int(rec.wirelen[i])]
        if name == "frame.cap_len":
            return [int(rec.caplen[i])]
        if name == "frame.time_epoch":
            return [int(rec.ts_ns[i]) / 1e9]
        if name == "frame.time_relative":
            return [(int(rec.ts_ns[i]) - ctx.first_ns) / 1e9]
        if name == "frame.time_delta":
            return [(int(rec.ts_ns[i]) - int(rec.ts_ns[i - 1])) / 1e9 if i else 0.0]
        if name == "frame.protocols":
            return [":".join(self._protocols(tshark=True))]
        if name in ("tcp.stream", "udp.stream"):
            proto = name.split(".")[0]
            fid = int(ix.flow[i])
            if fid < 0 or int(ix.l4[i]) != (6 if proto == "tcp" else 17):
                return []
            return [int(ctx.stream_of_flow(proto)[fid])]
        link = self._link_fields()
        if name.startswith("tcp.") and "tcp.flags" in link:
            got = self._tcp(name, link)
            if got is not None:
                return got
        if name in link:
            return link[name]
        if name in ("grpc.path", "grpc.service", "grpc.method"):
            return self._grpc_field(name)
        if self._is_protocol(name):
            return self._protocol_bytes(name)
        return self._decoder_fields().get(name, [])

    def _tcp(self, name: str, link: dict[str, list[object]]) -> list[object] | None:
        ix, i = self.ctx.ix, self.index
        if name in TCP_FLAG_FIELDS:
            return [bool(_int_of(link["tcp.flags"][-1]) & TCP_FLAG_FIELDS[name])]
        if name == "tcp.len":
            return [int(ix.payload_len[i])]
        fid = int(ix.flow[i])
        if name in ("tcp.seq", "tcp.ack") and fid >= 0:
            bases = self.ctx.tcp_bases()
            d = int(ix.direction[i])
            raw = _int_of(link["tcp.seq_raw" if name == "tcp.seq" else "tcp.ack_raw"][-1])
            base = int(bases[fid, d if name == "tcp.seq" else 1 - d])
            if base < 0:  # the other side never sent a packet: tshark counts from this ack
                return [1 if raw else 0]
            return [(raw - base) & 0xFFFFFFFF if raw or name == "tcp.seq" else 0]
        return None

    def _protocols(self, tshark: bool = False) -> list[str]:
        from ..session import packet_protocols

        pdus = self.pd.pdus if self.pd is not None else ()
        names = packet_protocols(self.ctx.ix, self.index, pdus)
        if not tshark:
            return names
        out: list[str] = []
        for nm in names:
            out.append(nm)
            if nm in ("eth", "vlan", "sll"):
                out.append("ethertype")
        return out

    def _is_protocol(self, name: str) -> bool:
        info = field_info(name, self.ctx.registry)
        return info is not None and info.type == "protocol"

    def _protocol_bytes(self, name: str) -> list[object]:
        """A protocol's bytes in this packet (what `udp contains 01:02` and `udp[0:2]` read); True
        for a protocol present whose bytes do not map to the frame (inflated, reassembled)."""
        self._link_fields()
        frame = None
        out: list[object] = []
        for layer in self._layers:
            if layer.name == name:
                frame = frame if frame is not None else self._frame()
                out.append(
                    frame[layer.start : layer.end] if layer.end > layer.start else frame[layer.start :]
                )
        if out or self.pd is None:
            if not out and name in self._protocols():
                out.append(True)
            return out
        if not any(pdu.protocol == name for pdu in self.pd.pdus):
            # a protocol shown inside another's tree (protobuf in a gRPC message)
            return [True] if name in self._decoder_fields() else []
        ix, i = self.ctx.ix, self.index
        for k, pdu in enumerate(self.pd.pdus):
            if pdu.protocol != name:
                continue
            span = self.pd.frame_span(k, pdu.span, int(ix.payload_off[i]), int(ix.payload_len[i]))
            if span is None:
                out.append(True)
            else:
                frame = frame if frame is not None else self._frame()
                out.append(frame[span[0] : span[1]])
        return out

    def _grpc_field(self, name: str) -> list[object]:
        out: list[object] = []
        for path in self._grpc:
            _, service, method = [*path.split("/", 2), "", ""][:3]
            out.append({"grpc.path": path, "grpc.service": service, "grpc.method": method}[name])
        return out


def _int_of(value: object) -> int:
    n = _number(value)
    return int(n) if n is not None else 0


def packet_fields(session: object, pd: object) -> PacketFields:
    """Every field of one decoded packet by Wireshark name, computed lazily on first access."""
    from ..session import PacketDecode, Session

    assert isinstance(session, Session) and isinstance(pd, PacketDecode)
    ctx = _context(session)
    return PacketFields(ctx, pd.index, pd, ctx.grpc.see(int(ctx.ix.flow[pd.index]), pd.index, pd.pdus))
