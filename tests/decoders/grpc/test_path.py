"""A call's path from its request headers (path.py), the header or, mid-connection, a value."""

from __future__ import annotations

from protoscope.decoders.grpc.path import request_path
from protoscope.decoders.http2.header_block import UNKNOWN, Header


def h(name: str, value: str, representation: str = "literal", known: bool = True) -> Header:
    return Header(name, value, (0, 0), representation, 0 if known else 70, known)


def test_the_path_header_comes_first() -> None:
    headers = [h(UNKNOWN, "/a.B/C", known=False), h(":path", "/demo.Directory/Get")]
    assert request_path(headers) == ("/demo.Directory/Get", "header")


def test_a_value_that_reads_like_a_grpc_path() -> None:
    """Only a header whose name came from an unseen HPACK entry, and only a gRPC path's shape."""
    for value, path in [
        ("/demo.Directory/Get", "/demo.Directory/Get"),
        ("/Greeter/SayHello", "/Greeter/SayHello"),
        ("/a.b.c_d.Svc_1/M2", "/a.b.c_d.Svc_1/M2"),
        ("/index.html", None),
        ("/a/b/c", None),
        ("/1pkg.Svc/M", None),
        ("text/plain", None),
        ("/Svc/", None),
    ]:
        got = request_path([h(UNKNOWN, value, known=False)])
        assert got == ((path, "value") if path else (None, None)), value
    assert request_path([h("x-path", "/a.B/C")]) == (None, None)  # a known name is what it says
    assert request_path([h(UNKNOWN, UNKNOWN, "indexed", known=False)]) == (None, None)
