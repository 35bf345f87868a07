"""A grpcurl command line that replays a captured gRPC call: "copy as grpcurl".

From a calls-report row: the server the call went to, its method, its request metadata (each a
`-H`; binary `-bin` values in base64, which grpcurl decodes back, as its MetadataFromHeaders
does), its grpc-timeout (`-max-time`) and its request messages as proto3 JSON (`-d`, several
messages one after the other, as grpcurl reads a stream). What grpcurl sets itself is left out:
the pseudo-headers, content-type, te, user-agent, grpc-accept-encoding, grpc-encoding and
grpc-timeout (the calls analysis keeps none of them in `request_metadata`).

grpcurl needs the method's schema (server reflection, or `-proto` / `-protoset`) and the request
in proto3 JSON with field names. Without a schema the messages were read by field number, which
grpcurl cannot take: the command then reads the request from stdin (`-d @`) and a comment line
before it gives the fields by number, to be named by whoever replays it.

It lives with the calls analysis (which writes it in every row as `grpcurl`) because decoders do
not import the inspector; `protoscope.inspector.grpcurl` is where the viewer and scripts take it.
"""

from __future__ import annotations

import base64
import json
import shlex
from collections.abc import Mapping


def _headers(metadata: object) -> list[str]:
    """`name: value` for each metadata value (a name with several values repeats)."""
    if not isinstance(metadata, Mapping):
        return []
    out: list[str] = []
    for name, value in metadata.items():
        for one in value if isinstance(value, list) else [value]:
            text = str(one)
            if str(name).endswith("-bin"):  # the row keeps binary values in hex
                try:
                    text = base64.b64encode(bytes.fromhex(text)).decode("ascii")
                except ValueError:
                    pass  # not hex: the value as the capture had it, which grpcurl takes as is
            out.append(f"{name}: {text}")
    return out


def _messages(call: Mapping[str, object]) -> tuple[list[object], bool]:
    """The request messages and whether all of them were read with a schema (proto3 JSON)."""
    items = call.get("requests")
    if not isinstance(items, list):
        return [], True
    messages = [item.get("message") for item in items if isinstance(item, Mapping)]
    typed = all(isinstance(item, Mapping) and item.get("type") for item in items)
    return messages, typed


NOTE_FIELDS_KEPT = 1000
"""Characters of the by-number request kept in the comment of a schema-less command."""


def _json(message: object) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


def grpcurl_command(call: Mapping[str, object], plaintext: bool = True) -> str:
    """The command, shell-quoted (`shlex`), for a calls-report row: `grpcurl -plaintext -H 'k: v'
    -d '{json}' host:port pkg.Svc/Method`. Comment lines (`# ...`) before it say what it cannot
    replay: a call without a path, messages read without a schema, messages the report left out.
    `plaintext`: the call went over h2c (TLS calls would take `-insecure` or certificates)."""
    path = call.get("path")
    server = call.get("server")
    if not isinstance(path, str) or not path.strip("/"):
        return "# no :path in the capture for this call: the method to call is unknown"
    notes: list[str] = []
    args = ["grpcurl"]
    if plaintext:
        args.append("-plaintext")
    for header in _headers(call.get("request_metadata")):
        args += ["-H", header]
    timeout = call.get("timeout")
    if isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout > 0:
        args += ["-max-time", f"{timeout:g}"]
    messages, typed = _messages(call)
    if not messages:
        notes.append("# no request message in the capture: grpcurl sends an empty one")
    elif typed:
        args += ["-d", " ".join(_json(m) for m in messages)]
    else:
        fields = " ".join(_json(m) for m in messages)
        if len(fields) > NOTE_FIELDS_KEPT:
            fields = fields[:NOTE_FIELDS_KEPT] + " [cut]"
        notes.append(
            "# no schema: the request is read from stdin as proto3 JSON with field names "
            f"(grpcurl takes them from server reflection or -proto); by field number it was: {fields}"
        )
        args += ["-d", "@"]
    omitted = call.get("requests_omitted")
    if isinstance(omitted, int) and omitted > 0:
        notes.append(f"# {omitted} request messages were left out of the report: they are not sent")
    args.append(server if isinstance(server, str) and server else "HOST:PORT")
    if not isinstance(server, str) or not server:
        notes.append("# the server's address is unknown: replace HOST:PORT")
    args.append(path.lstrip("/"))
    return "\n".join([*(n.replace("\n", " ") for n in notes), shlex.join(args)])


def split_command(text: str) -> list[str]:
    """The argument list of a `grpcurl_command` text (its comment lines dropped), as a shell would
    split it: how tests check the quoting."""
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    return shlex.split(" ".join(lines))
