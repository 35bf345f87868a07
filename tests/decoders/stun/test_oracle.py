"""STUN/TURN/ICE against tshark on every STUN capture of the public corpus.

Per packet: the same messages (type, transaction id), the same attribute types in order and the
same values of the common attributes (USERNAME, addresses after XOR, PRIORITY, ICE role
tie-breaker, ERROR-CODE, LIFETIME, FINGERPRINT, ChannelData channel). Only the messages tshark
shows are compared: we also decode what TURN relays (STUN inside Data indications and
ChannelData), which tshark leaves as data.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from protoscope.decoders.registry import load_registry
from protoscope.decoders.stun.messages import StunRecord
from protoscope.inspector.session import Session, flatten
from tests.conftest import manifest_captures, public_capture, tshark

SEP = "\x1f"
VALUES = (
    "stun.att.type",
    "stun.att.username",
    "stun.att.ipv4",
    "stun.att.ipv6",
    "stun.att.port",
    "stun.att.priority",
    "stun.att.tie-breaker",
    "stun.att.error",
    "stun.att.error.class",
    "stun.att.lifetime",
    "stun.att.crc32",
    "stun.channel",
)
LENIENT = (
    "tshark reads any datagram on a STUN port as ChannelData when it is not a STUN message, even "
    "with a channel number outside RFC 8656's 0x4000-0x4FFF (MS-TURN's 0xff10 in ndpi--teams); "
    "we leave those undecoded"
)
TSHARK_MORE = {
    "icmp": "an ICMP error quotes the datagram it answers; tshark decodes the STUN in the quote, we "
    "show the ICMP packet itself (no ICMP dissection yet)",
}


CAPTURES = manifest_captures(r"\b(stun|classicstun)\b")


def _value(text: str) -> object:
    if re.fullmatch(r"0x[0-9a-fA-F]+|\d+", text):
        return int(text, 0)
    return text


def tshark_view(path: Path, args: list[str]) -> tuple[dict[int, dict[str, list[object]]], set[int]]:
    fields = [
        "frame.number",
        "frame.protocols",
        "stun.type",
        "stun.id",
        "classicstun.type",
        "classicstun.id",
        "stun.attribute",
        "_ws.expert.message",
        *VALUES,
    ]
    cmd = ["-r", str(path), *args, "-T", "fields", "-E", "occurrence=a", "-E", f"aggregator={SEP}"]
    out = tshark(*cmd, *[a for f in fields for a in ("-e", f)])
    view: dict[int, dict[str, list[object]]] = {}
    not_compared: set[int] = set()
    for line in out.splitlines():
        cols = line.split("\t")
        frame, protocols = int(cols[0]), cols[1]
        row = dict(zip(fields[2:], cols[2:], strict=True))
        if not (row["stun.type"] or row["classicstun.type"] or row["stun.channel"]):
            continue
        if ":icmp:" in protocols:
            not_compared.add(frame)
            continue
        if not row["stun.type"] and not row["classicstun.type"]:
            channels = [int(c, 0) for c in row["stun.channel"].split(SEP)]
            if not any(0x4000 <= c <= 0x4FFF for c in channels):
                not_compared.add(frame)  # LENIENT
                continue
        types = (
            (row["stun.type"] or row["classicstun.type"]).split(SEP)
            if (row["stun.type"] or row["classicstun.type"])
            else []
        )
        ids = (row["stun.id"] or row["classicstun.id"]).split(SEP) if types else []
        entry: dict[str, list[object]] = {
            "messages": [(_value(t), i) for t, i in zip(types, ids, strict=True)]
        }
        if row["classicstun.type"]:
            view[frame] = entry  # tshark names RFC 3489 attributes classicstun.*: messages only
            continue
        for name in VALUES:
            entry[name] = [_value(v) for v in row[name].split(SEP)] if row[name] else []
        # stun.attribute lists the type of every attribute tshark knows, in order; the ones it
        # does not know appear only as "Unknown attribute 0xNNNN" expert messages.
        entry["stun.att.type"] = (
            [_value(v) for v in row["stun.attribute"].split(SEP)] if row["stun.attribute"] else []
        )
        unknown = re.findall(r"Unknown attribute 0x([0-9a-fA-F]{4})", row["_ws.expert.message"])
        entry["unknown"] = [int(h, 16) for h in unknown]
        view[frame] = entry
    return view, not_compared


def our_view(path: Path) -> dict[int, dict[str, list[object]]]:
    session = Session.open(path, load_registry())
    view: dict[int, dict[str, list[object]]] = {}
    try:
        for pd in session.decode():
            outer = [
                p for p, depth in zip(pd.pdus, pd.depths, strict=True) if depth == 0 and p.protocol == "stun"
            ]
            if not outer:
                continue
            entry: dict[str, list[object]] = {
                "messages": [
                    (p.record.type, p.record.transaction_id.hex())
                    for p in outer
                    if isinstance(p.record, StunRecord)
                ]
            }
            for name in VALUES:
                values: list[object] = []
                for p in outer:
                    v = flatten(p.fields).get(name)
                    values += v if isinstance(v, list) else ([] if v is None else [v])
                if name == "stun.att.username":  # tshark shows a string up to its first NUL
                    values = [str(v).split("\x00")[0] for v in values]
                entry[name] = values
            view[pd.index + 1] = entry
    finally:
        session.close()
    return view


@pytest.mark.parametrize("name", sorted(CAPTURES) or ["no-corpus"])
def test_stun_equals_tshark(name: str) -> None:
    path = public_capture(name)
    theirs, not_compared = tshark_view(path, CAPTURES[name])
    ours = our_view(path)
    assert theirs, "tshark shows no STUN here"
    for frame, want in theirs.items():
        got = ours.get(frame)
        assert got is not None, f"packet {frame}: tshark shows STUN {want['messages']}, we none"
        types = list(got["stun.att.type"])
        for unknown in want.pop("unknown", []):
            if unknown in types and len(types) > len(want["stun.att.type"]):
                types.remove(unknown)  # we decode it too; tshark has no field for it
        got = {**got, "stun.att.type": types}
        for key, value in want.items():
            assert got[key] == value, f"packet {frame} {key}"
    extra = set(ours) - set(theirs) - not_compared
    assert not extra, f"packets where only we see STUN: {sorted(extra)[:10]}"
