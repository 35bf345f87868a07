"""Decryption against tshark, side by side in one run (issue 15: see inside the encryption).

(a) gRPC over TLS: on the generated 200,000-packet capture and its key log (bench/gen_decrypt.py), times
    `protoscope F --keylog K --report calls --format json` against `tshark -r F -o tls.keylog_file:K
    -Y grpc -T fields -e grpc.path` (-e http2.headers.path on a tshark without grpc.path, as 4.0),
    the two taking turns --repeat times (3), reads each one's peak resident memory, and compares
    the calls by path of both with the generator's truth. Target: at least 2x faster than tshark.
(b) SRTP: on the generated 1M-packet DTLS-SRTP capture, times `protoscope F --keylog K --report streams
    --format json` and gives packets/s (target: at least 200,000 packets/s), with the streams compared
    with the truth and the same report timed without the key log (a report that costs no more with
    keys is likely not decrypting). tshark does not decrypt SRTP: the reference beside it is pylibsrtp
    decrypting every packet in one Python loop. The first AUTHENTICATED_SAMPLE packets are also decoded
    one by one (-Y srtp.auth_tag) to count the SRTP packets that authenticate.
(c) Data channels: `protoscope S --keylog K --report datachannels --format json` on each WebRTC sample
    whose truth file lists data channel messages, compared with the messages the truth says were sent.
A part whose protoscope option does not exist yet says so in one line and the bench goes on.
--quick (20,000 TLS and 100,000 DTLS-SRTP packets, one run each) shows that it works; its times are
mostly start-up and are no measure of the targets.
Run: python bench/bench_decrypt.py [--quick] [--grpc-packets N] [--srtp-packets N] [--repeat N] [--fresh]
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_captures import OUT
from gen_decrypt import (
    Generated,
    check_dtls,
    check_key_schedule,
    decrypt_srtp,
    ensure_srtp,
    ensure_tls,
    tshark_grpc_command,
    udp_payloads,
)

SAMPLES = Path(__file__).resolve().parent.parent / "captures" / "samples"
PROTOSCOPE = [sys.executable, "-m", "protoscope.inspector.cli"]


def run(cmd: list[str], stdout: Path) -> tuple[float, int, int, str]:
    """Wall seconds, peak RSS (KiB), exit code and the last line of stderr of one whole process whose
    standard output goes to a file (both tools write their whole answer, as a user would read it)."""
    with open(stdout, "wb") as out, tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - t
        err.seek(0)
        lines = [
            line for line in err.read().decode(errors="replace").splitlines() if "Running as user" not in line
        ]
    return elapsed, usage.ru_maxrss, os.waitstatus_to_exitcode(status), lines[-1] if lines else ""


class Failed(Exception):
    """A measured command exited with an error: its part is reported as failed and the bench goes on."""


def timed(cmd: list[str], stdout: Path, repeat: int) -> tuple[float, int]:
    """Median seconds and peak KiB over repeat runs."""
    runs = []
    for _ in range(repeat):
        seconds, kib, code, last = run(cmd, stdout)
        if code != 0:
            raise Failed(f"{Path(cmd[0]).name} {' '.join(cmd[1:4])}... exited {code}: {last}")
        runs.append((seconds, kib))
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs)


def side_by_side(ours: list[str], theirs: list[str], out: Path, repeat: int) -> tuple[float, int, float, int]:
    """Median seconds and peak KiB of ours, then of theirs, the two taking turns repeat times; their
    last standard outputs are left in out.ours and out.theirs."""
    o, t = [], []
    for _ in range(repeat):
        o.append(timed(ours, out.with_suffix(".ours"), 1))
        t.append(timed(theirs, out.with_suffix(".theirs"), 1))
    return (
        statistics.median(x[0] for x in o),
        max(x[1] for x in o),
        statistics.median(x[0] for x in t),
        max(x[1] for x in t),
    )


def protoscope_help() -> str:
    return subprocess.run([*PROTOSCOPE, "--help"], capture_output=True, text=True, check=True).stdout


def mib(kib: int) -> str:
    return f"{kib / 1024:6.0f} MiB"


# -- (a) gRPC over TLS ------------------------------------------------------------------------------


def calls_by_path(report: Path) -> dict[str, int]:
    rows = json.loads(report.read_text() or "[]")
    return dict(collections.Counter(str(row.get("path")) for row in rows))


def tshark_by_path(fields: Path) -> dict[str, int]:
    return dict(collections.Counter(line for line in fields.read_text().splitlines() if line))


def part_tls(tls: Generated, has_keylog: bool, repeat: int) -> None:
    packets = int(str(tls.truth["packets"]))
    print(f"(a) {tls.pcap.name}: {packets:,} packets, gRPC over TLS 1.2 on port 50443, {tls.keylog.name}")
    theirs = tshark_grpc_command(tls.pcap, tls.keylog)
    out = OUT / "bench-decrypt-calls"
    truth = tls.truth["calls"]
    if not has_keylog:
        t_t, t_m = timed(theirs, out.with_suffix(".theirs"), 1)
        print("  protoscope has no --keylog option yet: gRPC over TLS not measured")
        print(f"  tshark -o tls.keylog_file -Y grpc {t_t:7.2f} s  {mib(t_m)}   (alone, once)")
        theirs_calls = tshark_by_path(out.with_suffix(".theirs"))
        same = "equal" if theirs_calls == truth else "NOT equal"
        print(f"  tshark's calls by path {theirs_calls}: {same} to the truth {truth}")
        return
    ours = [*PROTOSCOPE, str(tls.pcap), "--keylog", str(tls.keylog), "--report", "calls", "--format", "json"]
    o_t, o_m, t_t, t_m = side_by_side(ours, theirs, out, repeat)
    print(f"  protoscope --keylog --report calls   {o_t:7.2f} s  {mib(o_m)}")
    print(f"  tshark -o tls.keylog_file -Y grpc    {t_t:7.2f} s  {mib(t_m)}")
    met = "met" if t_t / o_t >= 2 else "NOT met"
    print(f"  speed-up {t_t / o_t:5.2f}x (target >= 2x: {met})   memory ratio {o_m / t_m:5.2f}")
    ours_calls, theirs_calls = (
        calls_by_path(out.with_suffix(".ours")),
        tshark_by_path(out.with_suffix(".theirs")),
    )
    verdict = "equal" if ours_calls == theirs_calls == truth else "NOT equal"
    if not ours_calls:
        verdict += " (protoscope found no call: the TLS records were not decrypted)"
    print(f"  calls by path: protoscope {ours_calls}, tshark {theirs_calls}, truth {truth}: {verdict}")


# -- (b) SRTP ---------------------------------------------------------------------------------------


AUTHENTICATED_SAMPLE = 10_000
"""Packets decoded one by one (the packets report's path) to see how many SRTP packets authenticate."""


def part_srtp(srtp: Generated, has_keylog: bool, repeat: int) -> None:
    packets = int(str(srtp.truth["packets"]))
    print(
        f"(b) {srtp.pcap.name}: {packets:,} packets, ICE + DTLS 1.2 + SRTP_AES128_CM_HMAC_SHA1_80, "
        f"{srtp.truth['srtp_packets']:,} SRTP packets in 2 streams"
    )
    t = time.perf_counter()
    done, _ = decrypt_srtp(srtp.pcap, srtp.keylog)
    ref = time.perf_counter() - t
    print(f"  reference: pylibsrtp in a Python loop  {ref:7.2f} s  {done / ref:10,.0f} SRTP packets/s")
    if not has_keylog:
        print("  protoscope has no --keylog option yet: SRTP decryption not measured")
        return
    out = OUT / "bench-decrypt-streams.json"
    keyed = [*PROTOSCOPE, str(srtp.pcap), "--keylog", str(srtp.keylog)]
    seconds, kib = timed([*keyed, "--report", "streams", "--format", "json"], out, repeat)
    rate = packets / seconds
    met = "met" if rate >= 200_000 else "NOT met"
    print(f"  protoscope --keylog --report streams  {seconds:7.2f} s  {rate:10,.0f} packets/s  {mib(kib)}")
    print(f"  target >= 200,000 packets/s: {met}")
    rows = json.loads(out.read_text() or "[]")
    seen = {str(row.get("ssrc")): row.get("packets") for row in rows}
    truth = srtp.truth["packets_by_ssrc"]
    verdict = "equal" if seen == truth else "NOT equal"
    print(f"  streams (ssrc: packets) {seen}: {verdict} to the truth {truth}")
    plain, _ = timed([*PROTOSCOPE, str(srtp.pcap), "--report", "streams", "--format", "json"], out, 1)
    print(f"  the same without the key log          {plain:7.2f} s", end="")
    if seconds < 1.1 * plain:
        print("  (no dearer with keys: is the streams report decrypting?)")
    else:
        print(f"  (decryption costs {seconds - plain:.2f} s)")
    if (
        "srtp.auth_tag"
        not in subprocess.run(
            [*PROTOSCOPE, "--list-fields"], capture_output=True, text=True, check=False
        ).stdout
    ):
        print("  protoscope has no srtp.auth_tag field yet: authentication not counted")
        return
    n = min(AUTHENTICATED_SAMPLE, packets)
    expected = sum(1 for _, data in islice(udp_payloads(srtp.pcap), n) if data[:1] and 128 <= data[0] < 192)
    sample = [*keyed, "-c", str(n), "-Y", "srtp.auth_tag", "-T", "fields", "-e", "frame.number"]
    fields = OUT / "bench-decrypt-authenticated.txt"
    one_by_one, _ = timed(sample, fields, 1)
    authenticated = len(fields.read_text().split())
    ok = "all" if authenticated == expected else "NOT all"
    print(
        f"  -c {n:,} -Y srtp.auth_tag: {authenticated:,} of {expected:,} SRTP packets authenticated ({ok}), "
        f"{one_by_one:.2f} s = {n / one_by_one:,.0f} packets/s decoded one by one"
    )


# -- (c) data channels ------------------------------------------------------------------------------

Message = tuple[str, int, int, str, bytes]
"""Sender, SCTP stream id, size, SHA-256 of the whole content ('?' unknown) and what is known of the content
(all of it, a prefix when the report shortens long messages, or nothing)."""


def _content(m: dict[str, Any]) -> tuple[str, bytes]:
    if isinstance(m.get("sha256"), str):
        return str(m["sha256"]), b""
    size = m.get("size", m.get("length"))
    for key, decode in (("text", str.encode), ("hex", bytes.fromhex)):
        value = m.get(key)
        if isinstance(value, str):
            try:
                content = decode(value)
            except ValueError:
                return "?", b""
            return (hashlib.sha256(content).hexdigest() if len(content) == size else "?"), content
    return "?", b""


def truth_messages(truth: dict[str, Any]) -> list[Message]:
    return sorted((m["side"], m["stream_id"], m["size"], *_content(m)) for m in truth.get("messages", []))


def _sender(m: dict[str, Any], truth: dict[str, Any]) -> str:
    """The sending side in the truth's words (caller, callee) from what the report says."""
    ports = {str(port): str(side) for side, port in truth.get("ports", {}).items()}
    dtls = (truth.get("dtls") or [{}])[0]
    for key in ("dtls_side", "side", "sender", "from", "src", "source"):
        value = m.get(key)
        if isinstance(value, str):
            if value in ports.values():
                return value
            if value in ("client", "server") and f"dtls_{value}" in dtls:
                return str(dtls[f"dtls_{value}"])
            if ":" in value and value.rsplit(":", 1)[1] in ports:
                return ports[value.rsplit(":", 1)[1]]
    return "?"


def _channels(report: Any) -> list[dict[str, Any]]:
    """Every channel in the report: any object with a stream id and a list of messages."""
    found, stack = [], [report]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            if isinstance(node.get("stream_id"), int) and isinstance(node.get("messages"), list):
                found.append(node)
            else:
                stack.extend(node.values())
    return found


def report_messages(report: Any, truth: dict[str, Any]) -> list[Message]:
    return sorted(
        (_sender(m, truth), ch["stream_id"], m.get("size", m.get("length", -1)), *_content(m))
        for ch in _channels(report)
        for m in ch["messages"]
    )


def compare_labels(report: Any, truth: dict[str, Any]) -> str:
    """Each channel's label (and protocol, where the truth lists channels) against the truth; a
    pre-negotiated channel has no label on the wire, so the report's None is not compared."""
    want = {m["stream_id"]: {"label": m["label"]} for m in truth.get("messages", [])}
    for ch in truth.get("channels", []):
        want[ch["stream_id"]] = {"label": ch["label"], "protocol": ch["protocol"]}
    seen = {ch["stream_id"]: ch for ch in _channels(report)}
    wrong = [
        f"stream {sid} {key} {seen[sid].get(key)!r} != {value!r}"
        for sid, attrs in sorted(want.items())
        if sid in seen
        for key, value in attrs.items()
        if seen[sid].get(key) is not None and seen[sid].get(key) != value
    ]
    absent = sorted(set(want) - set(seen))
    if wrong or absent:
        return f"channels NOT equal: {'; '.join(wrong)}{f'; streams {absent} missing' if absent else ''}"
    return f"{len(want)} channels' labels equal"


def _same_content(m: Message, t: Message) -> bool | None:
    """True or False where the report lets the content be compared, None where it does not."""
    if m[3] != "?" and t[3] != "?":
        return m[3] == t[3]
    if m[4] and t[3] != "?" and len(t[4]) == t[2]:  # a shortened content: the prefix of the truth's
        return t[4].startswith(m[4])
    return None


def compare_messages(theirs: list[Message], truth: list[Message]) -> str:
    """'equal', or what differs. Each truth message takes one report message of the same stream and
    size whose sender and content match, where the report gives them (what it does not give matches
    anything, and is counted apart so that the verdict says how much was compared)."""
    pool = list(theirs)
    missing: list[Message] = []
    senders = contents = 0
    for t in truth:
        fits = [
            i
            for i, m in enumerate(pool)
            if m[0] in (t[0], "?") and m[1:3] == t[1:3] and _same_content(m, t) is not False
        ]
        if not fits:
            missing.append(t)
            continue
        best = min(fits, key=lambda i: (pool[i][0] == "?") + (_same_content(pool[i], t) is None))
        senders += pool[best][0] != "?"
        contents += _same_content(pool[best], t) is not None
        pool.pop(best)
    compared = f"{len(truth)} messages, senders compared for {senders}, contents for {contents}"
    if not missing and not pool:
        return f"equal: {compared}"
    return (
        f"NOT equal: {len(missing)} of {len(truth)} missing (first {missing[:1]}), "
        f"{len(pool)} extra (first {pool[:1]}); {compared}"
    )


def part_datachannels(has_keylog: bool) -> None:
    samples = []
    for truth_path in sorted(SAMPLES.glob("*.truth.json")):
        truth = json.loads(truth_path.read_text())
        if any("label" in m for m in truth.get("messages", [])):
            samples.append((truth_path.with_name(truth_path.name.replace(".truth.json", ".pcap")), truth))
    names = ", ".join(pcap.name for pcap, _ in samples)
    if not samples:
        print("(c) data channels: no sample has data channel messages in its truth file yet (make_webrtc.py)")
        return
    if not has_keylog:
        print(f"(c) data channels: protoscope has no --keylog option yet: {names} not compared")
        return
    print(f"(c) data channels of {names} against their truth files (the messages each side sent)")
    for pcap, truth in samples:
        keylog = pcap.with_name(truth.get("keylog") or pcap.name.replace(".pcap", ".keys"))
        out = OUT / "bench-decrypt-datachannels.json"
        cmd = [
            *PROTOSCOPE,
            str(pcap),
            "--keylog",
            str(keylog),
            "--report",
            "datachannels",
            "--format",
            "json",
        ]
        seconds, _, code, last = run(cmd, out)
        if code != 0 and "unknown report" in last:
            print("  protoscope has no datachannels report yet: not compared")
            return
        if code != 0:
            print(f"  {pcap.name}: protoscope --report datachannels exited {code}: {last}")
            continue
        try:
            report = json.loads(out.read_text())
        except ValueError as e:
            print(f"  {pcap.name}: protoscope --report datachannels wrote no JSON ({e})")
            continue
        verdict = compare_messages(report_messages(report, truth), truth_messages(truth))
        print(f"  {pcap.name}: {seconds:5.2f} s, {compare_labels(report, truth)}, messages {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="20,000 TLS and 100,000 DTLS-SRTP packets, one run each"
    )
    parser.add_argument("--grpc-packets", type=int, help="default 200,000 (--quick: 20,000)")
    parser.add_argument("--srtp-packets", type=int, help="default 1,000,000 (--quick: 100,000)")
    parser.add_argument("--repeat", type=int, help="runs of each timed command (default 3, --quick: 1)")
    parser.add_argument("--fresh", action="store_true", help="generate the captures again")
    args = parser.parse_args()
    if shutil.which("tshark") is None:
        sys.exit("bench needs tshark (apt-get install tshark)")
    repeat = args.repeat or (1 if args.quick else 3)
    grpc_packets = args.grpc_packets or (20_000 if args.quick else 200_000)
    srtp_packets = args.srtp_packets or (100_000 if args.quick else 1_000_000)
    tls, srtp = ensure_tls(grpc_packets, args.fresh), ensure_srtp(srtp_packets, args.fresh)
    for g in (tls, srtp):
        print(f"{g.pcap.name}: {g.took}, {g.pcap.stat().st_size / 2**20:.0f} MiB")
    print(f"  generator: {check_key_schedule()}")
    print(f"  {srtp.pcap.name}: {check_dtls(srtp.pcap, srtp.keylog)}")
    has_keylog = "--keylog" in protoscope_help()
    for part, capture in ((part_tls, tls), (part_srtp, srtp)):
        try:
            part(capture, has_keylog, repeat)
        except Failed as e:
            print(f"  failed: {e}")
    part_datachannels(has_keylog)


if __name__ == "__main__":
    main()
