"""The `protoscope` command line (see DESIGN.md, "The command-line contract").

Exit codes: 0 ok; 2 bad usage or unreadable input, with one clear line on stderr and no traceback.
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, TextIO

from .report import REPORTS
from .report.inert import clean

STDIN = "-"
"""The capture path that names standard input (captures.source reads it into a temporary file)."""

if TYPE_CHECKING:  # the engine is imported once the arguments are read: --version and usage errors
    # answer at once, and live capture (with scapy) is imported only for --live
    from protoscope.captures.live import LiveCapture
    from protoscope.decoders.registry import Registry

    from .session import Progress, Session

EXIT_OK = 0
EXIT_USAGE = 2
FORMATS = ("text", "json", "jsonl")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, exit 2, as argparse does but without usage spam
        self.exit(EXIT_USAGE, f"protoscope: {message} (see protoscope --help)\n")


def version() -> str:
    """The installed distribution's version, read from its METADATA (importlib.metadata costs ~45 ms
    of start-up to import; see decoders/registry.py)."""
    import glob

    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for entry in [*sys.path, here]:
        for folder in glob.glob(os.path.join(entry or ".", "protoscope-*.dist-info")):
            try:
                with open(os.path.join(folder, "METADATA"), encoding="utf-8") as f:
                    for line in f:
                        if line.startswith("Version:"):
                            return line.split(":", 1)[1].strip()
            except OSError:
                continue
    return "unknown"


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="protoscope",
        description="Inspect gRPC and WebRTC traffic in a capture file or on a live interface.",
    )
    p.add_argument("--version", action="version", version=f"protoscope {version()}")
    p.add_argument(
        "capture", nargs="?", help="pcap, pcapng (or gzip of either) file to open; '-' for standard input"
    )
    p.add_argument(
        "--report",
        metavar="NAME",
        help=f"print a report instead of opening the viewer: {', '.join(REPORTS)}, or an analysis's (calls)",
    )
    p.add_argument("--format", choices=FORMATS, default="text", help="report format (default: text)")
    p.add_argument(
        "-Y",
        "--filter",
        metavar="EXPR",
        help="display filter for packets and findings, e.g. 'stun.type == 0x0101'",
    )
    p.add_argument(
        "--export",
        choices=("mermaid", "pcapng"),
        help="mermaid: a ladder diagram on stdout; pcapng: the packets (--flow, -Y) to --output",
    )
    p.add_argument("--output", metavar="FILE.pcapng", help="with --export pcapng: where to write")
    p.add_argument("--flow", type=int, metavar="N", help="with --export: only flow N")
    p.add_argument(
        "--session",
        type=int,
        metavar="N",
        help="with --export: only WebRTC session N of --report sessions (its signaling, ICE, DTLS, media)",
    )
    p.add_argument(
        "-d",
        "--decode-as",
        action="append",
        default=[],
        metavar="RULE",
        help="tshark-style rule, e.g. 'tcp.port==50051,http2' (repeatable)",
    )
    p.add_argument(
        "--plugin", action="append", default=[], metavar="FILE.py", help="load decoders from a file"
    )
    p.add_argument("--no-plugins", action="store_true", help="load no third-party decoders")
    p.add_argument(
        "--plugin-override",
        action="store_true",
        help="let a plugin replace an in-tree decoder or analysis of the same name",
    )
    webrtc = p.add_argument_group("STUN/TURN keys (MESSAGE-INTEGRITY checks)")
    webrtc.add_argument(
        "--ice-pwd", action="append", default=[], metavar="PWD", help="an ICE password (repeatable)"
    )
    webrtc.add_argument(
        "--turn-auth",
        action="append",
        default=[],
        metavar="USER:PASS[@REALM]",
        help="TURN long-term credentials",
    )
    schema = p.add_argument_group("protobuf schemas")
    schema.add_argument("--proto", action="append", default=[], metavar="FILE.proto", help="(repeatable)")
    schema.add_argument(
        "--proto-path",
        action="append",
        default=[],
        metavar="DIR",
        help="import root; alone: all .proto in it",
    )
    schema.add_argument(
        "--descriptor-set", action="append", default=[], metavar="FILE", help="a FileDescriptorSet (protoset)"
    )
    schema.add_argument(
        "--reflect", action="append", default=[], metavar="HOST:PORT", help="ask a server by gRPC reflection"
    )
    live = p.add_argument_group("live capture")
    live.add_argument(
        "--live", action="store_true", help="capture from an interface (needs root or CAP_NET_RAW)"
    )
    live.add_argument("-i", "--interface", metavar="IFACE", help="interface to capture on")
    live.add_argument("-f", "--capture-filter", metavar="BPF", help="capture filter, e.g. 'udp port 3478'")
    live.add_argument("-w", "--write", metavar="OUT.pcapng", help="spool file (default: a temporary file)")
    live.add_argument("--count", type=int, default=0, metavar="N", help="stop after N packets")
    live.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this many seconds")
    return p


def _registry(args: argparse.Namespace) -> Registry:
    from protoscope.decoders.registry import load_registry

    reg = load_registry(
        args.plugin,
        use_plugins=not args.no_plugins,
        decode_as=args.decode_as,
        plugin_override=args.plugin_override,
    )
    options: dict[str, object] = {"stun.ice_pwd": args.ice_pwd, "stun.turn_auth": args.turn_auth}
    if args.proto or args.proto_path or args.descriptor_set or args.reflect:
        from .schemas import load_schemas

        options["protobuf.schemas"] = load_schemas(
            args.proto, args.proto_path, args.descriptor_set, args.reflect
        )
    reg.options = options
    reg.configure(options)  # a plugin whose configure fails is dropped, with a line in load_errors
    for problem in reg.load_errors:
        print(f"protoscope: warning: {clean(problem)}", file=sys.stderr)
    return reg


def _live_capture(args: argparse.Namespace) -> tuple[LiveCapture, bool]:
    """The capture --live asks for (not started) and whether its spool is a temporary file."""
    from protoscope.captures.live import LiveCapture, spool_path

    if not args.interface:
        raise _Usage("--live needs -i IFACE")
    if args.count < 0 or (args.duration is not None and args.duration <= 0):
        raise _Usage("--count and --duration must be positive")
    path, temporary = spool_path(args.write)
    return LiveCapture(args.interface, path, args.capture_filter, args.count, args.duration), temporary


def _live(args: argparse.Namespace) -> str:
    live, temporary = _live_capture(args)
    path = live.stats.spool
    live.start()
    if temporary:
        print(f"protoscope: capturing to {clean(path)}", file=sys.stderr)
    if not args.count and args.duration is None:
        print("protoscope: capturing until Ctrl-C", file=sys.stderr)
    live.wait()
    if live.error is not None:
        raise live.error
    stats = live.stats
    dropped = f", {stats.dropped} dropped by the kernel" if stats.dropped else ""
    print(f"protoscope: captured {stats.packets} packets to {clean(path)}{dropped}", file=sys.stderr)
    return str(path)


def _live_viewer(args: argparse.Namespace) -> int:
    """The viewer on live traffic: packets, flows and calls as they arrive."""
    from .tui.app import run as run_tui

    registry = _registry(args)
    live, _temporary = _live_capture(args)
    path = live.stats.spool
    live.start()  # a refused capture is one line on stderr before the screen opens
    try:
        run_tui(str(path), registry, live)
    finally:
        live.stop()
    print(f"protoscope: {live.stats.packets} packets kept in {clean(path)}", file=sys.stderr)
    return EXIT_OK


class _Held(io.StringIO):
    """A report's text held back for a terminal, laid out for that terminal's width."""

    def __init__(self, screen: TextIO) -> None:
        super().__init__()
        self.terminal_width = shutil.get_terminal_size((80, 24)).columns if screen.isatty() else None

    def isatty(self) -> bool:
        return True


class _Usage(Exception):
    pass


def run(args: argparse.Namespace, out: TextIO) -> int:
    from .report.output import write

    report = args.report
    if args.live:
        if args.capture:
            raise _Usage("give either a capture file or --live, not both")
        if report is None and args.export is None and out.isatty() and sys.stdin.isatty():
            return _live_viewer(args)
        path = _live(args)
    else:
        if not args.capture:
            raise _Usage("no capture file given (or use --live -i IFACE)")
        if args.interface or args.capture_filter or args.count or args.duration:
            raise _Usage("-i, -f, --count and --duration go with --live")
        if args.capture == STDIN and sys.stdin.isatty():
            raise _Usage("'-' reads a capture from standard input, which is a terminal here (pipe one in)")
        path = args.capture
    registry = _registry(args)
    if args.export == "pcapng":
        return _export_pcapng(path, registry, args, out)
    if args.export:
        return _export(path, registry, args, out)
    if args.filter is not None:
        from .filter import FilterError, compile_filter

        try:
            compile_filter(args.filter)
        except FilterError as exc:
            raise _Usage(f"bad filter: {exc}") from None
    if report is None:
        if out.isatty() and sys.stdin.isatty():
            from .tui.app import run as run_tui

            run_tui(str(path), registry)
            return EXIT_OK
        # The viewer needs a terminal on both ends (it reads keys from stdin): `cat F | protoscope -`
        # on a terminal gets the summary too.
        which = "stdout" if not out.isatty() else "stdin"
        print(f"protoscope: {which} is not a terminal; showing --report summary", file=sys.stderr)
        report = "summary"
    if report not in REPORTS and report not in registry.analyses:
        known = ", ".join([*REPORTS, *sorted(registry.analyses)])
        raise _Usage(f"unknown report {report!r} (known: {known})")
    from .session import Session

    status = _status(sys.stderr, f"indexing {path}")
    with status:
        session = Session.open(path, registry)
    # The bar and a report on the same terminal would garble each other: a text table (made for
    # a screen, so small) is held until the bar is gone; the packet list and JSON, which may be
    # long, are written as they come and get no bar.
    on_screen = out.isatty()
    hold = on_screen and args.format == "text" and report != "packets"
    target: TextIO = _Held(out) if hold else out
    try:
        with _progress(sys.stderr, enabled=hold or not on_screen) as bar:
            session.progress = bar
            session.display_filter = args.filter
            write(session, report, args.format, target)
        if isinstance(target, _Held):
            out.write(target.getvalue())
        out.flush()
    finally:
        session.close()
    return EXIT_OK


def _export_pcapng(path: str, registry: Registry, args: argparse.Namespace, out: TextIO) -> int:
    from .filter import FilterError, compile_filter, packet_fields
    from .report.export import flow_packets, write_pcapng
    from .session import Session

    if not args.output:
        raise _Usage("--export pcapng needs --output FILE.pcapng")
    session = Session.open(path, registry)
    try:
        if args.flow is not None and not 0 <= args.flow < len(session.flows):
            raise _Usage(f"no flow {args.flow} (the capture has {len(session.flows)})")
        packets = flow_packets(session, args.flow) if args.flow is not None else range(len(session.index))
        if args.filter:
            try:
                matches = compile_filter(args.filter)
            except FilterError as exc:
                raise _Usage(f"bad filter: {exc}") from None
            chosen = set(packets)
            packets = [
                pd.index
                for pd in session.decode()
                if pd.index in chosen and matches(packet_fields(session, pd))
            ]
        try:
            count = write_pcapng(session, packets, args.output)
        except OSError as exc:
            raise _Usage(f"cannot write {args.output}: {exc.strerror}") from None
    finally:
        session.close()
    print(f"protoscope: wrote {count} packets to {args.output}", file=sys.stderr)
    return EXIT_OK


def _export(path: str, registry: Registry, args: argparse.Namespace, out: TextIO) -> int:
    from .report.ladder import mermaid
    from .session import Session

    if args.flow is not None and args.session is not None:
        raise _Usage("give --flow or --session, not both")
    session = Session.open(path, registry)
    try:
        flows = _session_flows(session, args.session) if args.session is not None else None
        try:
            for line in mermaid(session, args.flow, flows):
                out.write(line + "\n")
        except ValueError as exc:
            raise _Usage(str(exc)) from None
    finally:
        session.close()
    return EXIT_OK


def _session_flows(session: Session, n: int) -> list[int]:
    from .report.rows import analysis_rows

    if "sessions" not in session.registry.analyses:
        raise _Usage("--session needs the sessions analysis (it is not loaded)")
    rows = [r for r in analysis_rows(session, "sessions") if r.get("kind") is None]
    row = next((r for r in rows if r.get("id") == n), None)
    if row is None:
        raise _Usage(f"no session {n} (the capture has {len(rows)})")
    flows = row.get("flows")
    return [int(f) for f in flows] if isinstance(flows, list) else []


@contextmanager
def _progress(stream: TextIO, enabled: bool = True) -> Iterator[Progress | None]:
    """A progress bar for decoding passes, on stderr when it is a terminal; cleared when done."""
    if not enabled or not stream.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, TaskProgressColumn, TextColumn
    from rich.progress import Progress as Bar

    columns = (TextColumn("decoding"), BarColumn(), TaskProgressColumn())
    with Bar(*columns, console=Console(file=stream), transient=True) as bar:
        task = bar.add_task("decoding", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _status(stream: TextIO, message: str) -> Any:
    if not stream.isatty():
        return nullcontext()
    from rich.console import Console

    return Console(file=stream).status(message)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    # protoscope multiplies no matrices: numpy's OpenBLAS needs no threads. By default it starts one
    # per core when numpy is imported, and they spin: importing numpy took 0.14 s and 0.24 s of CPU
    # on 2 cores, with one thread 0.115 s and 0.09 s. (Set before numpy is first imported.)
    for threads in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(threads, "1")
    from protoscope.captures.errors import CaptureError
    from protoscope.decoders.protobuf.schema import SchemaError
    from protoscope.decoders.registry import RegistryError

    # Decoding makes millions of small objects that live as long as a packet's decode. With
    # CPython's default thresholds (700, 10, 10) a collection ran every few messages and the older
    # generations, holding every object the imports made, were rescanned again and again: a
    # 24 MB gRPC stream's findings took 12.5 s, 8.5 s with the imports' objects frozen (never
    # scanned) and a collection every 10,000 allocations; memory the same (cycles are rare here).
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)
    try:
        return run(args, sys.stdout)
    except (CaptureError, RegistryError, SchemaError, _Usage) as exc:
        print(f"protoscope: {clean(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (protoscope ... | head): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except MemoryError:
        print("protoscope: out of memory", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        if os.environ.get("PROTOSCOPE_DEBUG"):
            raise
        print(
            f"protoscope: internal error: {type(exc).__name__}: {clean(exc)}"
            " (PROTOSCOPE_DEBUG=1 shows where)",
            file=sys.stderr,
        )
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
