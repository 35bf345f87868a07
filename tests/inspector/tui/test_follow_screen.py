"""Follow stream on the real gRPC sample, driven by Pilot at 80x24 and 200x50: the lines are the
engine's in each form, one colour per side, the byte counts in the footer, and the keys work."""

from __future__ import annotations

from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.widgets import Label

from protoscope.decoders.registry import load_registry
from protoscope.inspector.follow import follow_call, follow_flow, follow_http2, render
from protoscope.inspector.model import CaptureModel
from protoscope.inspector.session import Session
from protoscope.inspector.tui.follow import CLIENT, SERVER, FollowLines, FollowScreen
from tests.conftest import SAMPLES
from tests.inspector.tui.test_screens import assert_fits

SIZES = [(80, 24), (200, 50)]


class Host(App[None]):
    def __init__(self, screen: FollowScreen) -> None:
        super().__init__()
        self.dialog = screen
        self.closed = False

    def compose(self) -> ComposeResult:
        yield Label("host")

    def on_mount(self) -> None:
        self.push_screen(self.dialog, lambda _: setattr(self, "closed", True))


@pytest.fixture(scope="module")
def demo() -> CaptureModel:
    model = CaptureModel(Session.open(SAMPLES / "grpc-demo.pcap", load_registry()))
    model.decode_all()
    return model


async def shown(pilot: Any, screen: FollowScreen, mode: str) -> None:
    for _ in range(500):
        if screen.shown_mode == mode or "nothing to follow" in text(screen, "#follow-totals"):
            return
        await pilot.pause(0.02)


def text(screen: FollowScreen, selector: str) -> str:
    return str(screen.query_one(selector, Label).render())


def screen_lines(screen: FollowScreen) -> list[str]:
    view = screen.query_one(FollowLines)
    return [view.render_line(y).text.rstrip() for y in range(view.scrollable_content_region.height)]


@pytest.mark.parametrize("size", SIZES)
async def test_follow_flow_in_each_form(size: tuple[int, int], demo: CaptureModel) -> None:
    expected = follow_flow(demo.session, 0)
    screen = FollowScreen(demo, 0)
    app = Host(screen)
    async with app.run_test(size=size) as pilot:
        await shown(pilot, screen, "ascii")
        assert_fits(screen)
        view = screen.query_one(FollowLines)
        assert view.lines == render(expected, "ascii")
        totals = text(screen, "#follow-totals")
        assert totals == (
            f"client → server {expected.client_bytes} bytes, server → client {expected.server_bytes} bytes"
        )
        assert expected.client_bytes > 0 and expected.server_bytes > 0
        assert expected.client in text(screen, "#follow-client")
        assert expected.server in text(screen, "#follow-server")
        # the server speaks first (its SETTINGS), then the client's preface: each in its colour
        client_row = next(n for n, (side, _) in enumerate(view.lines) if side)
        server_row = next(n for n, (side, _) in enumerate(view.lines) if not side)
        assert max(client_row, server_row) < view.scrollable_content_region.height
        client_line = view.render_line(client_row)
        assert client_line.text.startswith("PRI * HTTP/2.0")
        assert {s.style for s in client_line if s.text.strip()} == {CLIENT}
        assert {s.style for s in view.render_line(server_row) if s.text.strip()} == {SERVER}

        await pilot.press("h")
        await shown(pilot, screen, "hex")
        assert view.lines == render(expected, "hex")
        assert "(hex dump)" in text(screen, "#follow-title")
        assert screen_lines(screen)[0].startswith("00000000  00 00 ")  # the server's SETTINGS
        assert any(line.startswith("00000000  50 52 49 20") for _, line in view.lines)  # "PRI "
        assert (
            len(view.lines[0][1]) <= view.scrollable_content_region.width
        )  # a hex line fits 80 columns whole

        await pilot.press("r")
        await shown(pilot, screen, "raw")
        assert view.lines == render(expected, "raw")
        await pilot.press("a")
        await shown(pilot, screen, "ascii")
        assert view.lines == render(expected, "ascii")
        assert_fits(screen)
        await pilot.press("escape")
    assert app.closed


async def test_follow_scrolls_with_the_list_keys(demo: CaptureModel) -> None:
    screen = FollowScreen(demo, 0)
    app = Host(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await shown(pilot, screen, "ascii")
        await pilot.press("h")
        await shown(pilot, screen, "hex")
        view = screen.query_one(FollowLines)
        assert (
            len(view.lines) > view.scrollable_content_region.height
        )  # the hex dump is longer than the screen
        await pilot.press("j", "j")
        assert view.scroll_offset.y == 2
        await pilot.press("k")
        assert view.scroll_offset.y == 1
        await pilot.press("G")
        assert view.scroll_offset.y == len(view.lines) - view.scrollable_content_region.height
        assert screen_lines(screen)[-1] == view.lines[-1][1].rstrip()
        await pilot.press("g")
        assert view.scroll_offset.y == 0
        await pilot.press("pagedown")
        assert view.scroll_offset.y == view.scrollable_content_region.height
        await pilot.press("q")
    assert app.closed


async def test_follow_call_and_http2_stream(demo: CaptureModel) -> None:
    call = next(c for c in demo.decoded.calls if c.get("path") == "/demo.Directory/Chat")
    expected = follow_call(demo.session, call)
    screen = FollowScreen(demo, int(call["flow"]), call=call)
    app = Host(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await shown(pilot, screen, "ascii")
        assert screen.query_one(FollowLines).lines == render(expected, "ascii")
        assert "gRPC call /demo.Directory/Chat" in text(screen, "#follow-title")
        labels = [line for _, line in render(expected, "ascii")]
        assert any(line.startswith("request 1 (") for line in labels)
        assert any(line.startswith("response 1 (") for line in labels)
        assert_fits(screen)

    stream = int(call["stream_id"])
    expected = follow_http2(demo.session, int(call["flow"]), stream)
    screen = FollowScreen(demo, int(call["flow"]), stream_id=stream)
    app = Host(screen)
    async with app.run_test(size=(200, 50)) as pilot:
        await shown(pilot, screen, "ascii")
        assert screen.query_one(FollowLines).lines == render(expected, "ascii")
        assert f"HTTP/2 stream {stream}" in text(screen, "#follow-title")


async def test_follow_of_what_is_not_there_says_so(demo: CaptureModel) -> None:
    screen = FollowScreen(demo, 0, stream_id=999)
    app = Host(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await shown(pilot, screen, "ascii")
        assert text(screen, "#follow-totals") == "nothing to follow: no HTTP/2 stream 999 in flow 0"
        assert screen.query_one(FollowLines).lines == []
        await pilot.press("h")  # no stream: the keys do nothing, and no traceback
        await pilot.pause()
        await pilot.press("escape")
    assert app.closed


async def test_follow_a_udp_flow() -> None:
    """A WebRTC flow: every datagram's payload, each side in its colour, sizes in the footer."""
    model = CaptureModel(Session.open(SAMPLES / "webrtc-direct.pcap", load_registry()))
    flow = next(f.id for f in model.index.flows if f.transport == "udp")
    expected = follow_flow(model.session, flow)
    screen = FollowScreen(model, flow)
    app = Host(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("h")
        await shown(pilot, screen, "hex")
        view = screen.query_one(FollowLines)
        assert view.lines == render(expected, "hex")
        # Named by tshark's udp.stream (UDP flows in order), not by our flow id (TCP and UDP).
        assert f"UDP stream {expected.stream}" in text(screen, "#follow-title")
        assert expected.stream == 0 and flow > 0
        assert text(screen, "#follow-totals") == (
            f"client → server {expected.client_bytes} bytes, server → client {expected.server_bytes} bytes"
        )
        assert {side for side, _ in view.lines} == {True, False}
        assert_fits(screen)
