"""Traffic that bench/bench_live.py captures: generators on 127.0.0.1 that count what they send.

* UDP at a given rate: fixed-size datagrams (PAYLOAD_SIZE bytes of ASCII text, which no decoder
  takes: a plain UDP flow) paced in batches every millisecond, from one or more processes (a Python
  `send` costs ~1-2 us, and the capture's taps add to it while tcpdump and protoscope listen).
  Each process counts the datagrams the kernel accepted; a refused send (ENOBUFS) is not counted.
* Marker datagrams, one a socket bound to its own source port, for the on-screen latency: the
  bench looks for that port on the viewer's screen.
* A gRPC load over h2c: a grpcio (asyncio) server with a generic unary handler that returns the
  request's bytes, and an asyncio client keeping many calls in flight at a paced rate; the client
  counts the calls that completed with status OK.

Every generator runs in a process of its own (spawned, so it shares no lock with the bench's
threads) and reports through a queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import multiprocessing as mp
import socket
import time
from dataclasses import dataclass
from multiprocessing.queues import Queue
from typing import Any

LOOPBACK = "127.0.0.1"
PAYLOAD_SIZE = 160
PAYLOAD = (b"protoscope live bench; plain UDP, no decoder takes it. " * 4)[:PAYLOAD_SIZE]
"""Starts with 'p' (0x70): outside every RFC 7983 first-byte range (STUN, DTLS, TURN, RTP)."""
TICK_S = 0.001
"""Pacing period: each process sends what is due every millisecond."""
CATCH_UP_S = 0.005
"""After a stall (the process was not scheduled) a sender sends at most this much of its rate at
once: the shortfall shows in the achieved rate instead of as a burst the kernel must absorb."""
START_DELAY_S = 0.5
"""Spawned processes import and open their sockets, then all start sending at the same instant."""
GRPC_SERVICE = "bench.Echo"
GRPC_METHOD = "Say"
GRPC_PATH = f"/{GRPC_SERVICE}/{GRPC_METHOD}"
GRPC_REQUEST = b"\x0a\x0cbench request"
"""A protobuf message (field 1, a 12-byte string), so the calls report decodes a message."""
_CTX = mp.get_context("spawn")


@dataclass(frozen=True, slots=True)
class Sent:
    """What a generator sent: datagrams (or calls), from the first to the last, by how many
    processes; `rate` is what it achieved, not what was asked."""

    count: int
    first: float
    last: float
    processes: int

    @property
    def seconds(self) -> float:
        return max(self.last - self.first, 1e-9)

    @property
    def rate(self) -> float:
        return self.count / self.seconds


@dataclass(frozen=True, slots=True)
class Running:
    """Generator processes started in the background, and the queue they report on."""

    processes: list[Any]
    out: Queue[Any]


def _results(running: Running, timeout: float) -> list[Any]:
    """Each process's report; a process that failed reports its exception instead."""
    results = [running.out.get(timeout=timeout) for _ in running.processes]
    for proc in running.processes:
        proc.join()
    failed = [r for r in results if isinstance(r, str)]
    if failed:
        raise RuntimeError(f"a generator failed: {failed[0]}")
    return results


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port on 127.0.0.1 the kernel says is free now."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def udp_sink(port: int = 0) -> socket.socket:
    """A bound socket the bench never reads: datagrams to a closed port would each cost an ICMP
    port unreachable (and ECONNREFUSED on the sender's next send); these fill its small receive
    buffer and are dropped there, after the capture taps saw them."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sink.bind((LOOPBACK, port))
    return sink


def _udp_sender(dst_port: int, rate: float, seconds: float, start_at: float, out: Queue[Any]) -> None:
    """One process's share: send `rate` datagrams a second for `seconds` from `start_at` (epoch)."""
    try:
        out.put(_send(dst_port, rate, seconds, start_at))
    except BaseException as exc:
        out.put(f"{type(exc).__name__}: {exc}")
        raise


def _send(dst_port: int, rate: float, seconds: float, start_at: float) -> tuple[int, float, float]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((LOOPBACK, 0))
    sock.connect((LOOPBACK, dst_port))
    send, payload, clock = sock.send, PAYLOAD, time.perf_counter
    most = max(1, int(rate * CATCH_UP_S))
    time.sleep(max(0.0, start_at - time.time()))
    first_epoch = time.time()
    t0 = clock()
    end = t0 + seconds
    sent = 0
    now = t0
    while now < end:
        due = min(int((now - t0) * rate) + 1, sent + most) - sent
        try:
            for _ in range(due):
                send(payload)
                sent += 1
        except OSError as exc:  # ENOBUFS, EAGAIN: not sent, not counted; the next tick retries
            if exc.errno not in (errno.ENOBUFS, errno.EAGAIN, errno.ECONNREFUSED):
                raise
        if sent > (clock() - t0) * rate:
            time.sleep(TICK_S)
        now = clock()
    sock.close()
    return sent, first_epoch, first_epoch + (clock() - t0)


def send_udp(dst_port: int, rate: float, seconds: float, processes: int = 1) -> Sent:
    """Send UDP to 127.0.0.1:dst_port at `rate` datagrams a second for `seconds`, split over
    `processes`; return the exact count the kernel accepted and the rate achieved."""
    return finish_udp(start_udp(dst_port, rate, seconds, processes), seconds)


def start_udp(dst_port: int, rate: float, seconds: float, processes: int = 1) -> Running:
    """send_udp() in the background (the bench sends markers and polls the screen meanwhile):
    the datagrams start START_DELAY_S from now; finish_udp() waits for them."""
    out: Queue[Any] = _CTX.Queue()
    start_at = time.time() + START_DELAY_S
    workers = [
        _CTX.Process(target=_udp_sender, args=(dst_port, rate / processes, seconds, start_at, out))
        for _ in range(processes)
    ]
    for w in workers:
        w.start()
    return Running(workers, out)


def finish_udp(running: Running, seconds: float) -> Sent:
    results = _results(running, seconds + 60)
    return Sent(
        sum(r[0] for r in results),
        min(r[1] for r in results),
        max(r[2] for r in results),
        len(running.processes),
    )


def send_marker(src_port: int, dst_port: int) -> float:
    """One datagram from 127.0.0.1:src_port (a port used for nothing else) to dst_port; the
    monotonic time it left."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LOOPBACK, src_port))
        sent = time.monotonic()
        s.sendto(PAYLOAD, (LOOPBACK, dst_port))
    return sent


def marker_ports(n: int, avoid: set[int]) -> list[int]:
    """n distinct free UDP ports, none in `avoid` and none a prefix-free clash for a ':PORT'
    search: all five digits, so ':4123' can never match inside ':41234'."""
    ports: list[int] = []
    while len(ports) < n:
        p = free_port()
        if p >= 10000 and p not in avoid and p not in ports:
            ports.append(p)
    return ports


# -- gRPC over h2c -------------------------------------------------------------------------------


def _grpc_server(out: Queue[Any], stop: Any) -> None:
    import grpc

    async def serve() -> None:
        server = grpc.aio.server()
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    GRPC_SERVICE,
                    {GRPC_METHOD: grpc.unary_unary_rpc_method_handler(_echo)},
                ),
            )
        )
        port = server.add_insecure_port(f"{LOOPBACK}:0")
        await server.start()
        out.put(port)
        while not stop.is_set():
            await asyncio.sleep(0.1)
        await server.stop(None)

    asyncio.run(serve())


async def _echo(request: bytes, _context: Any) -> bytes:
    return request


def start_grpc_server() -> tuple[Any, Any, int]:
    """A grpcio asyncio server in its own process: (process, stop event, port)."""
    out: Queue[Any] = _CTX.Queue()
    stop = _CTX.Event()
    proc = _CTX.Process(target=_grpc_server, args=(out, stop))
    proc.start()
    return proc, stop, int(out.get(timeout=60))


def stop_grpc_server(server: tuple[Any, Any, int]) -> None:
    proc, stop, _port = server
    stop.set()
    proc.join(30)
    if proc.is_alive():
        proc.terminate()
        proc.join()


def _grpc_client(port: int, rate: float, seconds: float, in_flight: int, out: Queue[Any]) -> None:
    try:
        out.put(asyncio.run(_calls(port, rate, seconds, in_flight)))
    except BaseException as exc:
        out.put(f"{type(exc).__name__}: {exc}")
        raise


async def _calls(port: int, rate: float, seconds: float, in_flight: int) -> tuple[int, int, float, float]:
    """Unary calls at `rate` a second for `seconds`, `in_flight` callers each taking every
    in_flight-th slot of the schedule: (ok, failed, first epoch, last epoch). The first call
    opens the connection (after the captures started, so they see the HTTP/2 preface)."""
    import grpc

    async with grpc.aio.insecure_channel(f"{LOOPBACK}:{port}") as channel:
        say = channel.unary_unary(GRPC_PATH)
        await say(GRPC_REQUEST, timeout=10)
        ok, failed = 1, 0
        loop = asyncio.get_running_loop()
        first = time.time()
        t0 = loop.time()
        end = t0 + seconds

        async def caller(j: int) -> None:
            nonlocal ok, failed
            n = 0
            while True:
                due = t0 + (n * in_flight + j) / rate
                if due >= end or loop.time() >= end:
                    return  # a client that falls behind stops on time: its rate shows it
                if due > loop.time():
                    await asyncio.sleep(due - loop.time())
                try:
                    await say(GRPC_REQUEST, timeout=10)
                    ok += 1
                except grpc.aio.AioRpcError:
                    failed += 1
                n += 1

        await asyncio.gather(*(caller(j) for j in range(in_flight)))
        return ok, failed, first, first + (loop.time() - t0)


def start_grpc_client(port: int, rate: float, seconds: float, in_flight: int = 64) -> Running:
    """An asyncio grpcio client in its own process making `rate` unary calls a second (at most
    `in_flight` at once) for `seconds`; finish_grpc_client() returns what it achieved."""
    out: Queue[Any] = _CTX.Queue()
    proc = _CTX.Process(target=_grpc_client, args=(port, rate, seconds, in_flight, out))
    proc.start()
    return Running([proc], out)


def finish_grpc_client(running: Running, seconds: float) -> tuple[Sent, int]:
    """(calls completed with status OK, as a Sent; calls that failed)."""
    ((ok, failed, first, last),) = _results(running, seconds + 120)
    return Sent(ok, first, last, 1), failed


def main() -> None:
    """`python bench/live_traffic.py PORT RATE SECONDS [PROCESSES]`: UDP to 127.0.0.1:PORT, and
    the exact count sent (for trying a capture by hand)."""
    import sys

    if len(sys.argv) not in (4, 5):
        sys.exit(main.__doc__)
    port, rate, seconds = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    sink = None
    with contextlib.suppress(OSError):  # a program of yours may listen there
        sink = udp_sink(port)
    try:
        sent = send_udp(port, rate, seconds, int(sys.argv[4]) if len(sys.argv) == 5 else 1)
    finally:
        if sink is not None:
            sink.close()
    print(f"sent {sent.count} datagrams in {sent.seconds:.3f} s ({sent.rate:.0f}/s, {sent.processes} proc)")


if __name__ == "__main__":
    main()
