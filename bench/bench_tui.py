"""The viewer on the generated 1M-packet capture (issue: the Textual app).

Measures, headless (App.run_test): time from start to the first painted packet rows, the time of
100 page-downs in the packet list, and peak resident memory. Targets: first rows under 0.5 s,
a page-down under 30 ms, resident memory under 400 MB. Also the share of the decoding pass spent
on the colouring rules (inspector/colour.py), which the pass computes for every packet.
Run: python bench/bench_tui.py
"""

from __future__ import annotations

import asyncio
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_captures import ensure

START = time.perf_counter()


def time_colouring() -> list[float]:
    """Wrap the colouring rules' per-packet and end-of-pass steps to add up their time."""
    from protoscope.inspector.colour import Colouring

    spent = [0.0]
    packet, finish = Colouring.packet, Colouring.finish

    def timed_packet(self: Colouring, *args: Any) -> int:
        t = time.perf_counter()
        try:
            return packet(self, *args)
        finally:
            spent[0] += time.perf_counter() - t

    def timed_finish(self: Colouring, *args: Any) -> None:
        t = time.perf_counter()
        try:
            finish(self, *args)
        finally:
            spent[0] += time.perf_counter() - t

    Colouring.packet = timed_packet  # type: ignore[method-assign]
    Colouring.finish = timed_finish  # type: ignore[method-assign]
    return spent


async def main() -> None:
    from protoscope.decoders.registry import load_registry
    from protoscope.inspector.tui.app import ProtoscopeApp
    from protoscope.inspector.tui.packets import PacketList

    udp, _ = ensure()
    colouring = time_colouring()
    start = time.perf_counter()
    app = ProtoscopeApp(udp, load_registry())
    async with app.run_test(size=(160, 50)) as pilot:
        packets = app.query_one(PacketList)
        while packets.count == 0 or not packets.render_line(1).text.strip():
            await pilot.pause(0.005)
        await pilot.pause(0)  # one more frame: the rows are painted
        first_rows = time.perf_counter() - start
        pass_start = time.perf_counter()
        while not (app.model is not None and app.model.decoded.complete):
            await pilot.pause(0.05)
        decoded = time.perf_counter() - start
        pass_time = time.perf_counter() - pass_start

        async def timed(key: str) -> list[float]:
            out = []
            for _ in range(100):
                t = time.perf_counter()
                await pilot.press(key)
                await pilot.pause(0)
                out.append(time.perf_counter() - t)
            return sorted(out)

        # Pilot waits for the app to settle after every key; an unbound key measures that wait.
        idle = await timed("x")
        times = await timed("pagedown")
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        now = (
            next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS"))
            / 1024
        )
        print(f"{udp.name}: {packets.count} packets")
        print(
            f"  first rows painted      {first_rows:6.3f} s after start (imports before: "
            f"{start - START:.3f} s)   target < 0.5 s"
        )
        print(f"  decoding pass done      {decoded:6.3f} s after start")
        print(
            f"  colouring rules         {colouring[0]:6.3f} s of the pass's ~{pass_time:.1f} s "
            f"({100 * colouring[0] / max(pass_time, 1e-9):.1f} %, timer overhead included)"
        )
        print(
            f"  page-down               median {times[50] * 1000:5.1f} ms through Pilot, of which "
            f"{idle[50] * 1000:.1f} ms is Pilot's own wait (an unbound key): "
            f"{(times[50] - idle[50]) * 1000:.1f} ms of work   target < 30 ms"
        )
        print(
            f"  resident memory         {now:6.0f} MiB while browsing, {rss:.0f} MiB peak while indexing "
            "(the file's pages, mapped)   target < 400 MB"
        )
        app.exit()


if __name__ == "__main__":
    asyncio.run(main())
