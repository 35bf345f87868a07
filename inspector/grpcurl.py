"""Copy as grpcurl: the command line that replays a captured gRPC call, for the viewer's `y` in
Calls and for scripts. Every calls-report row already carries it as `grpcurl`; this builds it
for a row that does not (one from an older export, or edited), with the same words.

The code is `protoscope.decoders.grpc.grpcurl`: the calls analysis writes the key in its rows,
and decoders never import the inspector (tests/test_import_rules.py).
"""

from __future__ import annotations

from protoscope.decoders.grpc.grpcurl import grpcurl_command, split_command

__all__ = ["grpcurl_command", "split_command"]
