"""The `protoscope` command line (see DESIGN.md, "The command-line contract").

Exit codes: 0 ok; 2 bad usage or unreadable input, with one clear line on stderr and no traceback.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import io
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .livemode import UsageError
from .report import REPORTS
from .report.inert import clean

STDIN = "-"
"""The capture path that names standard input (captures.source reads it into a temporary file)."""

if TYPE_CHECKING:  # the engine is imported once the arguments are read: --version and usage errors
    # answer at once, and live capture is imported only for --live (inspector/livemode.py)
    from protoscope.decoders.api import FieldInfo
    from protoscope.decoders.registry import Registry
    from protoscope.decoders.tls.keylog import KeyLog

    from .keys import KeyLogFiles
    from .session import Progress, Session

EXIT_OK = 0
EXIT_USAGE = 2
FORMATS = ("text", "json", "jsonl")
LAYERS = ("eth", "ip", "ipv6", "tcp", "udp")
"""What endpoints and conversations count by (stats.LAYERS; not imported: the engine loads late)."""
MODES = ("ascii", "hex", "raw")
"""Follow modes (follow.MODES)."""
Z_LAYERS = {"eth": "eth", "ip": "ip", "ipv6": "ipv6", "tcp": "tcp", "udp": "udp"}
ENGINES = ("local", "spark")
"""Where --export parquet runs (inspector/lake/runner.py, inspector/lake/spark.py)."""
QUERY_FORMATS = ("text", "csv", "json")
"""`protoscope query`'s formats (lake.output.FORMATS; not imported: it loads duckdb)."""
LAKE_MODULES = ("pyarrow", "communityid")
"""What --export parquet imports beyond protoscope's own dependencies (the `lake` extra)."""
SPARK_MODULES = ("pyspark",)
"""What --engine spark imports beyond LAKE_MODULES (the `spark` extra)."""
QUERY_MODULES = ("duckdb", "pyarrow")
"""What `protoscope query` imports (the `lake` extra)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, exit 2, as argparse does but without usage spam
        self.exit(EXIT_USAGE, f"protoscope: {message} (see {self.prog} --help)\n")


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
        epilog='protoscope query DIR "SQL": SQL over the dataset --export parquet wrote (see protoscope '
        "query --help)",
    )
    p.add_argument("--version", action="version", version=f"protoscope {version()}")
    p.add_argument(
        "captures",
        nargs="*",
        metavar="CAPTURE",
        help="pcap, pcapng (or gzip of either) file to open; '-' for standard input; with --export "
        "parquet: any number of files and directories (their captures, at any depth)",
    )
    p.add_argument(
        "-r", "--read-file", metavar="FILE", help="the capture to read (as the positional CAPTURE)"
    )
    p.add_argument(
        "-c",
        "--count",
        type=int,
        default=0,
        metavar="N",
        help="a file: only its first N packets (every report and the viewer); --live: stop after N",
    )
    p.add_argument(
        "--report",
        metavar="NAME",
        help=f"print a report instead of opening the viewer: {', '.join(REPORTS)}, or an analysis's (calls)",
    )
    p.add_argument("--format", choices=FORMATS, default="text", help="report format (default: text)")
    _tshark_options(p)
    p.add_argument(
        "-Y",
        "--filter",
        metavar="EXPR",
        help="display filter (Wireshark's language, see --list-fields): the packets, or the rows with a "
        "matching packet, of every report but summary and follow; the viewer's first filter",
    )
    p.add_argument(
        "--export",
        choices=("mermaid", "pcapng", "audio", "parquet"),
        help="mermaid: a ladder diagram on stdout; pcapng: the packets (--flow, -Y) to --output; "
        "audio: RTP stream --stream N to --output (WAV for PCMU/PCMA/G.722/L16, Ogg for Opus); "
        "parquet: every table of every CAPTURE to the dataset --output DIR (see protoscope query)",
    )
    p.add_argument(
        "--output",
        metavar="FILE",
        help="with --export pcapng or audio: where to write; parquet: the dataset, a directory or a "
        "URI (s3://, hdfs://, gs://)",
    )
    p.add_argument(
        "--encoding",
        metavar="NAME",
        help="with --export audio: the codec (PCMU, PCMA, G722, L16, opus) when no SDP names it",
    )
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
    _lake_options(p)
    webrtc = p.add_argument_group("STUN/TURN keys (MESSAGE-INTEGRITY checks)")
    webrtc.add_argument(
        "--ice-pwd", action="append", default=[], metavar="PWD", help="an ICE password (repeatable)"
    )
    webrtc.add_argument(
        "--sdp",
        action="append",
        default=[],
        metavar="FILE",
        help="signaling from outside the capture: an SDP offer or answer, a JSON signaling message, "
        "or trickled candidates; learnt before the first packet (repeatable)",
    )
    webrtc.add_argument(
        "--turn-auth",
        action="append",
        default=[],
        metavar="USER:PASS[@REALM]",
        type=turn_auth,
        help="TURN long-term credentials",
    )
    keys = p.add_argument_group("decryption keys (TLS, DTLS, SRTP)")
    keys.add_argument(
        "--keylog",
        action="append",
        default=[],
        metavar="FILE",
        help="an NSS key log (SSLKEYLOGFILE) for TLS and DTLS, and SRTP keyed by DTLS (repeatable); "
        "a pcapng's Decryption Secrets Blocks are read too",
    )
    keys.add_argument(
        "--srtp-key",
        action="append",
        default=[],
        type=srtp_key,
        metavar="SSRC|ADDR:PORT,PROFILE,BASE64",
        help="SRTP master key and salt for media whose keys are not in the capture, e.g. "
        "0x1234abcd,AES_CM_128_HMAC_SHA1_80,BASE64 (repeatable; ADDR:PORT is the sender's)",
    )
    keys.add_argument(
        "--inject-secrets",
        action="store_true",
        help="with --export pcapng: write the key log into the file (a Decryption Secrets Block, as "
        "editcap --inject-secrets does)",
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
    live = p.add_argument_group("live capture (dumpcap's and tcpdump's flags)")
    live.add_argument(
        "--live", action="store_true", help="capture from an interface (needs root or CAP_NET_RAW)"
    )
    live.add_argument(
        "-i",
        "--interface",
        action="append",
        default=[],
        metavar="IFACE",
        help="interface to capture on (repeatable: one pcapng, an interface block each; 'any': all)",
    )
    live.add_argument("-f", "--capture-filter", metavar="BPF", help="capture filter, e.g. 'udp port 3478'")
    live.add_argument(
        "-w",
        "--write",
        metavar="OUT.pcapng",
        help="--live: the spool file (default: a temporary file); a file: write the packets -Y keeps "
        "(as tshark)",
    )
    live.add_argument(
        "-D",
        "--list-interfaces",
        action="store_true",
        help="list the interfaces with their addresses and exit",
    )
    live.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this many seconds")
    live.add_argument(
        "-B", "--buffer-size", type=int, metavar="MiB", help="kernel capture buffer in MiB (default 32)"
    )
    live.add_argument(
        "-s",
        "--snapshot-length",
        type=int,
        metavar="SNAPLEN",
        help="bytes kept of each packet (default 262144)",
    )
    live.add_argument(
        "-p",
        "--no-promiscuous-mode",
        action="store_true",
        help="do not put the interface in promiscuous mode",
    )
    live.add_argument(
        "-b",
        "--ring-buffer",
        action="append",
        default=[],
        metavar="KEY:VALUE",
        help="ring-buffer files with -w, as dumpcap: filesize:KB, duration:SECONDS, files:N (repeatable)",
    )
    live.add_argument(
        "--follow",
        action="store_true",
        help="CAPTURE is still being written (tcpdump -w): show or report packets as they are added, "
        "until Ctrl-C",
    )
    return p


def _lake_options(p: argparse.ArgumentParser) -> None:
    """--export parquet's: how many captures at once, and where they run (inspector/lake)."""
    lake = p.add_argument_group("--export parquet (many captures; query them with: protoscope query DIR)")
    lake.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        help="captures exported at once, a process each (default: one a core)",
    )
    lake.add_argument(
        "--engine",
        choices=ENGINES,
        help="local: this machine's cores (default); spark: Spark tasks (pyspark; CAPTURE and "
        "--output may be hdfs:// or s3a:// URIs)",
    )
    lake.add_argument(
        "--spark-master",
        metavar="URL",
        help="--engine spark: the master (default: spark-submit's, or local[*])",
    )


def _tshark_options(p: argparse.ArgumentParser) -> None:
    """tshark's flags (-z, -T, -e, -E, -V, -x) and what the statistics and follow reports take."""
    p.add_argument(
        "-z",
        dest="statistics",
        metavar="SPEC",
        help="tshark's statistics and follow: io,phs | endpoints,LAYER | conv,LAYER "
        "| io,stat,SECS[,FILTER...] | follow,tcp|udp,ascii|hex|raw,FLOW "
        "| follow,http2,MODE,FLOW,STREAM | grpc,methods",
    )
    p.add_argument(
        "-T",
        dest="output_format",
        choices=("text", "json", "jsonl", "fields"),
        help="as --format; fields: -e",
    )
    p.add_argument("-e", dest="fields", action="append", default=[], metavar="FIELD", help="with -T fields")
    p.add_argument(
        "-E",
        dest="field_options",
        action="append",
        default=[],
        metavar="OPTION",
        help="with -T fields: separator=C, header=y|n, quote=d|s|n, aggregator=C, occurrence=f|l|a",
    )
    p.add_argument("-V", dest="detail", action="store_true", help="packets text report: each packet's tree")
    p.add_argument("-x", dest="hex", action="store_true", help="packets text report: each packet's bytes")
    p.add_argument("--list-fields", action="store_true", help="list the display filter fields and exit")
    p.add_argument(
        "--describe",
        nargs="?",
        const="",
        metavar="SYMBOL",
        help="list the loaded schemas' services, or describe one symbol (like grpcurl list/describe)",
    )
    follow = p.add_argument_group("--report follow and statistics")
    follow.add_argument(
        "--stream",
        type=int,
        metavar="N",
        help="follow: an HTTP/2 stream id of --flow; --export audio: row N (0-based) of --report streams",
    )
    follow.add_argument("--call", type=int, metavar="N", help="follow: call N (0-based) of --report calls")
    follow.add_argument("--follow-mode", choices=MODES, default="ascii", help="follow: ascii, hex or raw")
    follow.add_argument(
        "--layer", choices=LAYERS, default="ip", help="endpoints and conversations: the layer (default ip)"
    )
    follow.add_argument(
        "--interval",
        type=float,
        metavar="SECONDS",
        help="io: bucket width (default 1); --live/--follow jsonl: an analysis's rows so far, this often",
    )
    follow.add_argument(
        "--io-filter",
        action="append",
        default=[],
        metavar="EXPR",
        help="io: a series per filter (repeatable)",
    )
    follow.add_argument("--unit", choices=("packets", "bytes"), default="packets", help="io: what to count")


def turn_auth(text: str) -> str:
    """--turn-auth's USER:PASS[@REALM], checked when the arguments are read (the realm is after the
    last '@', so a user may be an e-mail address)."""
    user, colon, rest = text.partition(":")
    password = rest.rpartition("@")[0] if "@" in rest else rest
    if not colon or not user or not password:
        raise argparse.ArgumentTypeError(f"{text!r} is not USER:PASS[@REALM]")
    return text


def srtp_key(text: str) -> object:
    """--srtp-key's value, checked when the arguments are read (a bad one: its reason, exit 2)."""
    from protoscope.decoders.rtp.srtp_keys import parse_srtp_key

    try:
        return parse_srtp_key(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _registry(args: argparse.Namespace) -> Registry:
    from protoscope.decoders.registry import load_registry

    reg = load_registry(
        args.plugin,
        use_plugins=not args.no_plugins,
        decode_as=args.decode_as,
        plugin_override=args.plugin_override,
    )
    options: dict[str, object] = {
        "stun.ice_pwd": args.ice_pwd,
        "stun.turn_auth": args.turn_auth,
        "srtp.keys": args.srtp_key,
    }
    if args.sdp:
        options["sdp.signaling"] = _sdp_files(args.sdp)  # sdpfiles.SIGNALING_OPTION
    keylog_files = _keylog(args.keylog)
    options["tls.keylog"] = keylog_files.keylog
    if args.keylog:
        options["tls.keylog_files"] = keylog_files
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


def _sdp_files(paths: Sequence[str]) -> object:
    """--sdp's files read and checked (inspector/sdpfiles.py): exit 2 for one that cannot be read
    or holds no signaling."""
    from .sdpfiles import SdpFileError, load_sdp_files

    try:
        return load_sdp_files(paths)
    except SdpFileError as exc:
        raise UsageError(clean(str(exc))) from None


def _keylog(paths: Sequence[str]) -> KeyLogFiles:
    """--keylog's files read: one line on stderr per file with lines not understood (they are
    skipped and counted), exit 2 for a file that cannot be read. A file whose last line is not
    whole yet (a browser writing it) is read up to its last whole line; later looks at a growing
    capture read what it gains."""
    from protoscope.decoders.tls.keylog import KeyLog

    from .keys import KeyLogFiles

    files = KeyLogFiles(KeyLog(), list(paths))
    try:
        read = files.read()
    except OSError as exc:
        raise UsageError(f"cannot read key log {clean(exc.filename or '')}: {exc.strerror or exc}") from None
    for path, kept, skipped in read:
        if skipped:
            print(
                f"protoscope: key log {clean(path)}: {skipped} line(s) not understood, skipped "
                f"({kept} secret(s) read)",
                file=sys.stderr,
            )
    return files


class _Held(io.StringIO):
    """A report's text held back for a terminal, laid out for that terminal's width."""

    def __init__(self, screen: TextIO) -> None:
        super().__init__()
        self.terminal_width = shutil.get_terminal_size((80, 24)).columns if screen.isatty() else None

    def isatty(self) -> bool:
        return True


def _z_report(spec: str, args: argparse.Namespace) -> None:
    """tshark's `-z SPEC` as the report it names, with its options set on `args`."""
    parts = spec.split(",")
    head = ",".join(parts[:2])
    if spec == "io,phs":
        args.report = "hierarchy"
    elif parts[0] in ("endpoints", "conv") and len(parts) == 2 and parts[1] in Z_LAYERS:
        args.report = "endpoints" if parts[0] == "endpoints" else "conversations"
        args.layer = Z_LAYERS[parts[1]]
    elif head == "io,stat" and len(parts) >= 3:
        args.report = "io"
        try:
            args.interval = float(parts[2])
        except ValueError:
            raise UsageError(f"-z io,stat: {parts[2]!r} is not a number of seconds") from None
        # tshark's filters are the rest, split at commas; an empty one is all packets.
        args.io_filter = [f.strip().strip('"') for f in parts[3:]]
    elif parts[0] == "follow" and len(parts) in (4, 5) and parts[1] in ("tcp", "udp", "http2"):
        if parts[2] not in MODES:
            raise UsageError(f"-z follow: mode {parts[2]!r} is not one of {', '.join(MODES)}")
        if (parts[1] == "http2") != (len(parts) == 5):
            raise UsageError("-z follow,tcp|udp,MODE,FLOW or -z follow,http2,MODE,FLOW,STREAM")
        try:
            numbers = [int(p) for p in parts[3:]]
        except ValueError:
            raise UsageError(f"-z {spec}: the flow and stream are numbers") from None
        args.report, args.follow_mode, args.flow = "follow", parts[2], numbers[0]
        args.stream = numbers[1] if len(numbers) > 1 else None
        args.follow_transport = parts[1] if parts[1] != "http2" else "tcp"
    elif spec == "grpc,methods":
        args.report = "methods"
    else:
        raise UsageError(
            f"-z {spec!r} is not known (io,phs, endpoints,LAYER, conv,LAYER, io,stat,SECS[,FILTER...], "
            "follow,tcp|udp,MODE,FLOW, follow,http2,MODE,FLOW,STREAM, grpc,methods)"
        )


def _describe(args: argparse.Namespace, out: TextIO) -> int:
    """--describe [SYMBOL]: the loaded schemas' services, or one symbol, like grpcurl."""
    from protoscope.decoders.protobuf.schema import SchemaSet

    from .schemas import describe

    registry = _registry(args)
    loaded = registry.options.get("protobuf.schemas")
    if not isinstance(loaded, SchemaSet):
        raise UsageError("--describe needs schemas: --proto, --proto-path, --descriptor-set or --reflect")
    try:
        lines = describe(loaded, args.describe or None)
    except (KeyError, ValueError) as exc:
        raise UsageError(str(exc).strip("'\"")) from None
    for line in lines:
        out.write(clean(line) + "\n")
    return EXIT_OK


def _check(args: argparse.Namespace) -> None:
    """Combinations that mean nothing are refused here, before any work (never silently ignored)."""
    captures = list(args.captures)
    if args.read_file:
        if captures and captures != [args.read_file]:
            raise UsageError("give the capture once: -r FILE or FILE")
        captures = [args.read_file]
    if len(captures) > 1 and args.export != "parquet":
        raise UsageError(
            f"{len(captures)} captures given: several go with --export parquet only (one is read "
            "by the viewer, a report or another export)"
        )
    args.captures = captures
    args.capture = captures[0] if captures else None
    lake = {"--jobs": args.jobs, "--engine": args.engine, "--spark-master": args.spark_master}
    for flag, value in lake.items():
        if value is not None and args.export != "parquet":
            raise UsageError(f"{flag} goes with --export parquet")
    if args.spark_master is not None and args.engine != "spark":
        raise UsageError("--spark-master goes with --engine spark")
    if args.interface and not args.capture:
        args.live = True  # tshark: -i alone captures
    if args.count < 0:
        raise UsageError("-c must be a positive number of packets")
    if args.statistics:
        if args.report:
            raise UsageError("give --report or -z, not both")
        _z_report(args.statistics, args)
    if args.output_format:
        if args.output_format == "fields":
            if not args.fields:
                raise UsageError("-T fields needs at least one -e FIELD")
            if args.report not in (None, "packets"):
                raise UsageError("-T fields lists packets: it does not go with --report " + args.report)
            args.report = "fields"
        else:
            args.format = args.output_format
    elif args.fields or args.field_options:
        raise UsageError("-e and -E go with -T fields")
    if (args.detail or args.hex) and args.report is None and args.export is None and not args.write:
        args.report = "packets"
    if (args.detail or args.hex) and (args.report != "packets" or args.format != "text"):
        raise UsageError("-V and -x go with the packets text report")
    follow_only = {"--stream": args.stream, "--call": args.call}
    for flag, value in follow_only.items():
        if (
            value is not None
            and args.report != "follow"
            and not (flag == "--stream" and args.export == "audio")
        ):
            raise UsageError(
                f"{flag} goes with --report follow" + (" or --export audio" if flag == "--stream" else "")
            )
    if args.encoding and args.export != "audio":
        raise UsageError("--encoding goes with --export audio")
    if args.inject_secrets and args.export != "pcapng":
        raise UsageError("--inject-secrets goes with --export pcapng")
    if args.flow is not None and args.report not in (None, "follow") and not args.export:
        raise UsageError(f"--flow goes with --report follow and --export, not --report {args.report}")


def _open(path: str, registry: Registry, count: int) -> Session:
    from .session import open_session

    return open_session(path, registry, count)


def run(args: argparse.Namespace, out: TextIO) -> int:
    if args.list_interfaces:
        from .livemode import list_interfaces

        return list_interfaces(out)
    if args.list_fields:
        from .fields import list_fields_text

        for line in list_fields_text(_registry(args)):
            out.write("\t".join(clean(part) for part in line.split("\t")) + "\n")
        return EXIT_OK
    if args.describe is not None:
        return _describe(args, out)
    _check(args)
    if args.export == "parquet":
        return _export_parquet(args)
    on_terminal = out.isatty() and sys.stdin.isatty()
    if args.live or args.follow:
        return _growing(args, out, on_terminal)
    if not args.capture:
        raise UsageError("no capture file given (or use --live -i IFACE)")
    if args.duration:
        raise UsageError("--duration goes with --live and --follow")
    _no_capture_flags(args)
    if args.capture == STDIN and sys.stdin.isatty():
        raise UsageError("'-' reads a capture from standard input, which is a terminal here (pipe one in)")
    return _file(args, out, args.capture, args.count, on_terminal)


def _export_parquet(args: argparse.Namespace) -> int:
    """--export parquet: every table of every capture to the dataset --output (inspector/lake),
    on this machine's cores (lake/runner.py) or as Spark tasks (lake/spark.py)."""
    if args.live or args.follow:
        raise UsageError(
            "--export parquet reads capture files, not --live or --follow (export the file -w wrote)"
        )
    if args.filter is not None:
        raise UsageError(
            "-Y does not apply to --export parquet: the dataset holds every packet (filter in SQL: "
            'protoscope query DIR "SELECT ... WHERE ...")'
        )
    refused = {"--report": args.report, "--flow": args.flow, "--session": args.session, "-w": args.write}
    for flag, value in refused.items():
        if value is not None:
            raise UsageError(
                f"{flag} does not go with --export parquet (it writes every table of every capture)"
            )
    if not args.output:
        raise UsageError("--export parquet needs --output DIR (a directory or a URI)")
    if not args.captures:
        raise UsageError("--export parquet needs capture files or directories")
    if STDIN in args.captures:
        raise UsageError(
            "--export parquet reads files: '-' (standard input) is not one (save it to a file first)"
        )
    if args.duration:
        raise UsageError("--duration goes with --live and --follow")
    _no_capture_flags(args)
    if args.count:
        # The capture id is the file's hash: a partial export would stand for the whole capture.
        raise UsageError(
            "-c does not go with --export parquet: a capture's partition holds every packet of it "
            "(cut the file first: editcap -r or protoscope -c N -w FILE)"
        )
    if args.jobs is not None and args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.jobs is not None and args.engine == "spark":
        raise UsageError(
            "--jobs goes with --engine local (Spark runs as many tasks as its executors have cores)"
        )
    require_modules(LAKE_MODULES, "--export parquet", "lake")
    if args.engine == "spark":
        require_modules(SPARK_MODULES, "--engine spark", "spark")
        from .lake.spark import run_spark

        # As given: Spark lists directories and globs on its own file systems (HDFS, s3a).
        return run_spark(list(args.captures), args.output, args, args.spark_master)
    from .lake.runner import captures_in, export_many

    for capture in args.captures:
        if "://" in capture and not os.path.exists(capture):
            raise UsageError(
                f"{clean(capture)}: --engine local reads local files (--engine spark reads hdfs:// and s3a://)"
            )
    paths = captures_in(args.captures)
    if not paths:
        raise UsageError(
            f"no captures in {', '.join(clean(c) for c in args.captures)} (files ending in .pcap, .pcapng, "
            ".cap, .pcap.gz or .pcapng.gz)"
        )
    return export_many(paths, args.output, args, args.jobs)


def query_parser() -> argparse.ArgumentParser:
    """`protoscope query`'s arguments (a command of its own: main sees `query` first)."""
    p = _Parser(
        prog="protoscope query",
        description="SQL over a dataset that --export parquet wrote: DuckDB, embedded, with a view per "
        "table (capture: the capture id column; captures: each capture's path)",
    )
    p.add_argument("dataset", nargs="?", metavar="DIR", help="the dataset (a local directory)")
    p.add_argument("sql", nargs="?", metavar="SQL", help='e.g. "SELECT path, count(*) FROM calls GROUP BY 1"')
    p.add_argument("--query", metavar="NAME", help="a named query instead of SQL (see --list)")
    p.add_argument(
        "--list",
        action="store_true",
        help="list the named queries and what each answers (with DIR: its tables too)",
    )
    p.add_argument(
        "--format",
        choices=QUERY_FORMATS,
        default="text",
        help="text: an aligned table; csv: with a header; json: an array of objects (default: text)",
    )
    return p


def is_query(argv: Sequence[str]) -> bool:
    """`protoscope query ...`, unless a capture file is called `query`."""
    return bool(argv) and argv[0] == "query" and not os.path.isfile("query")


def query(argv: Sequence[str], out: TextIO) -> int:
    """`protoscope query DIR "SQL" | DIR --query NAME | --list` (inspector/lake/query.py)."""
    try:
        args = query_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    from .lake import query as lake_query  # duckdb and pyarrow: imported when a query runs

    try:
        if args.list:  # the .sql files (and DIR's table names): no duckdb needed
            if args.sql or args.query:
                raise UsageError("--list takes no SQL or --query (protoscope query [DIR] --list)")
            tables = lake_query.list_tables(args.dataset) if args.dataset else None
            for line in lake_query.describe(list(lake_query.named_queries().values())):
                out.write(line + "\n")
            if tables is not None:
                out.write(tables + "\n")
            out.flush()
            return EXIT_OK
        require_modules(QUERY_MODULES, "protoscope query", "lake")
        if not args.dataset:
            raise UsageError('give a dataset: protoscope query DIR "SQL" | DIR --query NAME | --list')
        if (args.sql is None) == (args.query is None):
            raise UsageError('give SQL or --query NAME, one of them: protoscope query DIR "SQL"')
        sql = args.sql if args.query is None else lake_query.named_query(args.query).sql
        lake_query.run(args.dataset, sql, args.format, out)
    except lake_query.QueryError as exc:
        raise UsageError(str(exc)) from None
    out.flush()
    return EXIT_OK


def require_modules(modules: Sequence[str], what: str, extra: str) -> None:
    """Import each of `modules` (an extra's) before any work: a missing one is one line with the
    install hint, not an internal error halfway through the first capture."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            raise UsageError(
                f"{what} needs {module}: pip install 'protoscope[{extra}]' (in a checkout: pip install "
                f"-e '.[{extra}]')"
            ) from None


def _no_capture_flags(args: argparse.Namespace) -> None:
    """The flags of a capture, refused where nothing is captured (a file, --follow)."""
    flags = {"-i": args.interface, "-f": args.capture_filter, "-B": args.buffer_size}
    flags |= {"-s": args.snapshot_length, "-b": args.ring_buffer, "-p": args.no_promiscuous_mode}
    for flag, value in flags.items():
        if value not in (None, False, []):
            raise UsageError(f"{flag} goes with --live")


def checked_registry(args: argparse.Namespace) -> Registry:
    """The decoders, with -Y checked against their fields before any work."""
    registry = _registry(args)
    if args.filter is not None:
        from .filter import FilterError, compile_filter

        try:
            compile_filter(args.filter, registry)
        except FilterError as exc:
            raise UsageError(f"bad filter: {exc}") from None
    return registry


def _growing(args: argparse.Namespace, out: TextIO, on_terminal: bool) -> int:
    """--live and --follow: the viewer, rows as they come (jsonl), or a report at the end."""
    from . import livemode

    report = args.report
    if args.live and args.follow:
        raise UsageError("--follow reads a file another program writes; --live captures: give one of them")
    if args.live and args.capture:
        raise UsageError("give either a capture file or --live, not both")
    if not args.live:
        _no_capture_flags(args)
    if args.ring_buffer and (report is not None or args.export):
        raise UsageError("-b writes ring-buffer files for later reading (as dumpcap): no report or export")
    registry = checked_registry(args)
    streamed = report in ("packets", "findings") or report in registry.analyses
    if args.follow:
        if not args.capture or args.capture == STDIN:
            raise UsageError("--follow needs a capture file that another program is writing")
        if args.write or args.count:
            raise UsageError("--follow reads FILE as it grows: -w and -c do not go with it")
        if report is None and args.export is None and on_terminal:
            return livemode.follow_viewer(args, registry, args.capture)
        if args.format != livemode.STREAMED_FORMAT or not streamed:
            raise UsageError(
                "--follow writes rows as they come: --report packets|findings|calls|streams|sessions"
                " --format jsonl"
            )
        return livemode.stream_report(args, registry, out, args.capture)
    if report is None and args.export is None and on_terminal and not args.ring_buffer:
        return livemode.live_viewer(args, registry)
    if args.format == livemode.STREAMED_FORMAT and streamed and not args.ring_buffer:
        return livemode.stream_report(args, registry, out, None)
    path = livemode.capture_to_file(args)
    if args.ring_buffer:
        return EXIT_OK
    return _file(args, out, path, 0, False, registry)


def _file(
    args: argparse.Namespace,
    out: TextIO,
    path: str,
    count: int,
    on_terminal: bool,
    registry: Registry | None = None,
) -> int:
    """A capture file (or a finished live spool): written packets, an export, the viewer or a report."""
    from .report.output import ReportError, ReportOptions, write

    report = args.report
    registry = registry or checked_registry(args)
    if args.write and not args.live:
        if report is not None or args.export:
            raise UsageError("-w with a capture file writes packets; it does not go with a report or export")
        return _write_filtered(path, registry, args, count)
    if args.export == "pcapng":
        return _export_pcapng(path, registry, args, out, count)
    if args.export == "audio":
        return _export_audio(path, registry, args, count)
    if args.export:
        if args.filter is not None:
            raise UsageError("-Y does not apply to --export mermaid (choose with --flow or --session)")
        return _export(path, registry, args, out, count)
    if report is None:
        if on_terminal:
            from .tui.app import run as run_tui

            with _first_packets(path, registry, count) as shown:
                run_tui(shown, registry, display_filter=args.filter)
            return EXIT_OK
        # The viewer needs a terminal on both ends (it reads keys from stdin). Without one, a
        # command line in tshark's words (-r, -Y, -c, -V, -x) gets tshark's answer, the packet
        # list; `protoscope F | less` or `cat F | protoscope -` on a terminal gets the summary.
        if args.read_file or args.filter is not None or count or args.detail or args.hex:
            report = "packets"
        else:
            which = "stdout" if not out.isatty() else "stdin"
            print(f"protoscope: {which} is not a terminal; showing --report summary", file=sys.stderr)
            report = "summary"
    if report not in (*REPORTS, "fields") and report not in registry.analyses:
        known = ", ".join([*REPORTS, *sorted(registry.analyses)])
        raise UsageError(f"unknown report {report!r} (known: {known})")
    status = _status(sys.stderr, f"indexing {path}")
    with status:
        session = _open(path, registry, count)
    # The bar and a report on the same terminal would garble each other: a text table (made for
    # a screen, so small) is held until the bar is gone; the packet list and JSON, which may be
    # long, are written as they come and get no bar.
    on_screen = out.isatty()
    hold = on_screen and args.format == "text" and report not in ("packets", "fields", "follow")
    target: TextIO = _Held(out) if hold else out
    _check_follow(session, args)
    options = ReportOptions(
        layer=args.layer,
        interval=1.0 if args.interval is None else args.interval,
        io_filters=tuple(f or None for f in args.io_filter) or (None,),
        unit=args.unit,
        flow=args.flow,
        stream=args.stream,
        call=args.call,
        follow_mode=args.follow_mode,
        detail=args.detail,
        hex=args.hex,
    )
    try:
        with _progress(sys.stderr, enabled=hold or not on_screen) as bar:
            session.progress = bar
            session.display_filter = args.filter
            if report == "fields":
                _write_fields(session, args, target)
            else:
                write(session, report, args.format, target, options)
        if isinstance(target, _Held):
            out.write(target.getvalue())
        out.flush()
    except ReportError as exc:
        raise UsageError(str(exc)) from None
    finally:
        session.close()
    return EXIT_OK


def _check_follow(session: Session, args: argparse.Namespace) -> None:
    """-z follow,tcp|udp|http2,MODE,N: N is tshark's stream number (tcp.stream or udp.stream:
    that transport's conversations in order of their first packet), turned into our flow id."""
    transport = getattr(args, "follow_transport", None)
    if transport is None or args.flow is None:
        return
    from .filter import flow_of_stream  # only for -z follow: other reports do not load the filter

    flow = flow_of_stream(session, transport, args.flow)
    if flow is None:
        raise UsageError(f"no {transport}.stream {args.flow} in this capture")
    args.flow = flow


@contextmanager
def _first_packets(path: str, registry: Registry, count: int) -> Iterator[str]:
    """The capture the viewer opens: `path`, or with -c a temporary copy of its first packets."""
    if not count:
        yield path
        return
    import tempfile

    from .report.export import write_pcapng

    with tempfile.TemporaryDirectory(prefix="protoscope-") as folder:
        copy = os.path.join(folder, f"first-{count}.pcapng")
        session = _open(path, registry, count)
        try:
            write_pcapng(session, range(len(session.index)), copy)
        finally:
            session.close()
        yield copy


def _write_filtered(path: str, registry: Registry, args: argparse.Namespace, count: int) -> int:
    """-w OUT with a capture file: the packets -Y keeps (all without it) as pcapng, as tshark."""
    from .filter import filter_rows
    from .report.export import write_pcapng

    session = _open(path, registry, count)
    try:
        packets = filter_rows(session, args.filter) if args.filter else range(len(session.index))
        try:
            written = write_pcapng(session, packets or (), args.write)
        except OSError as exc:
            raise UsageError(f"cannot write {args.write}: {exc.strerror}") from None
    finally:
        session.close()
    print(f"protoscope: wrote {written} packets to {clean(args.write)}", file=sys.stderr)
    return EXIT_OK


FIELD_QUOTES = {"d": '"', "s": "'", "n": ""}


def _field_options(options: Sequence[str]) -> dict[str, str]:
    """-E options as tshark reads them: separator=/t|/s|C, header=y|n, quote=d|s|n, aggregator=C,
    occurrence=f|l|a."""
    out = {"separator": "\t", "header": "n", "quote": "n", "aggregator": ",", "occurrence": "a"}
    for option in options:
        key, eq, value = option.partition("=")
        if not eq or key not in out:
            raise UsageError(
                f"-E {option!r}: expected separator=, header=, quote=, aggregator= or occurrence="
            )
        value = {"/t": "\t", "/s": " "}.get(value, value)
        if key == "header" and value not in ("y", "n"):
            raise UsageError("-E header=y or header=n")
        if key == "quote" and value not in FIELD_QUOTES:
            raise UsageError("-E quote=d, quote=s or quote=n")
        if key == "occurrence" and value not in ("f", "l", "a"):
            raise UsageError("-E occurrence=f, l or a")
        out[key] = value
    return out


def _field_value(name: str, value: object, info: FieldInfo | None = None) -> str:
    """A field's value as tshark -T fields prints it: numbers in decimal, or in hex padded to the
    field's width when the field is shown in hex (stun.type 0x0101, ip.id 0x1810), booleans 1/0,
    bytes in hex with colons, times in seconds with nine decimals."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int) and info is not None and info.base == "hex" and value >= 0:
        return f"0x{value:0{info.digits}x}"
    if isinstance(value, bytes | bytearray | memoryview):
        return ":".join(f"{b:02x}" for b in bytes(value))
    if isinstance(value, float):
        if name.startswith("frame.time"):
            return f"{value:.9f}"
        return f"{value:.9f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))
    return str(value)


def _epoch(ns: int) -> str:
    """frame.time_epoch from the capture's nanoseconds (a float would lose the last digits)."""
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


def _write_fields(session: Session, args: argparse.Namespace, out: TextIO) -> None:
    """-T fields -e F...: one line a packet (that -Y keeps), one column a field, as tshark."""
    from .fields import field_info
    from .filter import field_values, filter_rows, packet_fields

    for name in args.fields:
        if name not in ("frame.number",) and field_info(name, session.registry) is None:
            raise UsageError(f"-e {name}: no such field (see --list-fields)")
    infos = {name: field_info(name, session.registry) for name in args.fields}
    options = _field_options(args.field_options)
    quote = FIELD_QUOTES[options["quote"]]
    sep = options["separator"]
    if options["header"] == "y":
        out.write(sep.join(args.fields) + "\n")  # tshark quotes the values, not the header
    wanted = None
    if args.filter:
        rows = filter_rows(session, args.filter)
        wanted = set(rows or ())
    for pd in session.decode():
        if wanted is not None and pd.index not in wanted:
            continue
        fields = packet_fields(session, pd)
        cells = []
        for name in args.fields:
            if name == "frame.time_epoch":
                values = [_epoch(int(session.index.records.ts_ns[pd.index]))]
            else:
                values = [_field_value(name, v, infos[name]) for v in field_values(fields, name)]
            if options["occurrence"] == "f":
                values = values[:1]
            elif options["occurrence"] == "l":
                values = values[-1:]
            text = options["aggregator"].join(values)
            cells.append(f"{quote}{clean(text)}{quote}" if values else "")
        out.write(sep.join(cells) + "\n")


def _export_pcapng(path: str, registry: Registry, args: argparse.Namespace, out: TextIO, count: int) -> int:
    from protoscope.decoders.tls.keylog import KeyLog

    from .filter import filter_rows
    from .report.export import flow_packets, write_pcapng

    if not args.output:
        raise UsageError("--export pcapng needs --output FILE.pcapng")
    session = _open(path, registry, count)
    try:
        if args.flow is not None and not 0 <= args.flow < len(session.flows):
            raise UsageError(f"no flow {args.flow} (the capture has {len(session.flows)})")
        packets: Sequence[int] = (
            flow_packets(session, args.flow) if args.flow is not None else range(len(session.index))
        )
        if args.filter:
            chosen = set(packets)
            packets = [i for i in filter_rows(session, args.filter) or () if i in chosen]
        secrets = ""
        if args.inject_secrets:
            keylog = session.registry.options.get("tls.keylog")
            secrets = _secrets_of(session, packets, keylog) if isinstance(keylog, KeyLog) else ""
            if not secrets:
                raise UsageError(
                    "--inject-secrets: no keys to inject (give --keylog, or a pcapng with secrets, "
                    "for connections among the packets written)"
                )
        try:
            written = write_pcapng(session, packets, args.output, secrets)
        except OSError as exc:
            raise UsageError(f"cannot write {args.output}: {exc.strerror}") from None
    finally:
        session.close()
    print(f"protoscope: wrote {written} packets to {clean(args.output)}", file=sys.stderr)
    return EXIT_OK


def _secrets_of(session: Session, packets: Sequence[int], keylog: KeyLog) -> str:
    """The key log lines of the TLS and DTLS connections whose ClientHello is among `packets`: a
    file made of one flow does not carry the keys of the others (editcap would inject them all)."""
    from protoscope.decoders.tls.keylog import KeyLog

    wanted = {random for _, random in keylog.secrets}
    found: set[bytes] = set()
    for i in packets:
        if not wanted - found:
            break
        frame = session.index.frame(i)
        if b"\x16\x03" in frame or b"\x16\xfe" in frame:  # a TLS or DTLS handshake record
            found.update(r for r in wanted - found if r in frame)
    kept = KeyLog({k: v for k, v in keylog.secrets.items() if k[1] in found})
    return kept.text()


def _export_audio(path: str, registry: Registry, args: argparse.Namespace, count: int) -> int:
    from .audio import ExportError, export_audio

    if args.stream is None or not args.output:
        raise UsageError("--export audio needs --stream N (a row of --report streams) and --output FILE")
    if args.filter is not None:
        raise UsageError("-Y does not apply to --export audio (choose the stream with --stream)")
    session = _open(path, registry, count)
    try:
        done = export_audio(session, args.stream, Path(args.output), args.encoding)
    except ExportError as exc:
        raise UsageError(str(exc)) from None
    finally:
        session.close()
    print(
        f"protoscope: wrote {done.packets} {clean(done.encoding)} packets of SSRC 0x{done.ssrc:08x} to "
        f"{clean(str(done.path))}",
        file=sys.stderr,
    )
    if done.note:
        print(f"protoscope: {clean(done.note)}", file=sys.stderr)
    return EXIT_OK


def _export(path: str, registry: Registry, args: argparse.Namespace, out: TextIO, count: int) -> int:
    from .report.ladder import mermaid

    if args.flow is not None and args.session is not None:
        raise UsageError("give --flow or --session, not both")
    session = _open(path, registry, count)
    try:
        flows = _session_flows(session, args.session) if args.session is not None else None
        try:
            for line in mermaid(session, args.flow, flows):
                out.write(line + "\n")
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    finally:
        session.close()
    return EXIT_OK


def _session_flows(session: Session, n: int) -> list[int]:
    from .report.rows import analysis_rows

    if "sessions" not in session.registry.analyses:
        raise UsageError("--session needs the sessions analysis (it is not loaded)")
    rows = [r for r in analysis_rows(session, "sessions") if r.get("kind") is None]
    row = next((r for r in rows if r.get("id") == n), None)
    if row is None:
        raise UsageError(f"no session {n} (the capture has {len(rows)})")
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


def describe_argv(argv: Sequence[str]) -> list[str]:
    """`protoscope describe [SYMBOL] OPTIONS` (grpcurl's word order) as `--describe [SYMBOL]`,
    unless a capture file is called `describe`."""
    if not argv or argv[0] != "describe" or os.path.exists("describe"):
        return list(argv)
    rest = list(argv[1:])
    symbol = [rest.pop(0)] if rest and not rest[0].startswith("-") else []
    return ["--describe", *symbol, *rest] if symbol else [*rest, "--describe"]


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    command: Callable[[], int]
    if is_query(words):
        command = lambda: query(words[1:], sys.stdout)  # noqa: E731
    else:
        try:
            args = parser().parse_args(describe_argv(words))
        except SystemExit as exc:
            return int(exc.code or 0)
        command = lambda: run(args, sys.stdout)  # noqa: E731
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
        return command()
    except (CaptureError, RegistryError, SchemaError, UsageError) as exc:
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
