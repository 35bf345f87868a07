"""The command palette's go-to provider: frames, flows, calls, report rows, tabs and saved
filters by name."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from textual.command import DiscoveryHit, Hit, Hits, Provider

from .text import clean

MAX_PALETTE_FLOWS = 200
"""Flows the palette lists by name without a number typed (a query "flow 12" finds any)."""


NAMED = "…"
"""Stands for the number in a go-to command listed by name ("go to call …")."""


class GoTo(Provider):
    """Command palette: go-to commands by name ("go to flow 3 (gRPC/HTTP2)", "go to frame N",
    "show calls"), saved filters ("filter: NAME"), "save filter", and a row of any report
    ("go to stream N", "go to session N", a plugin's)."""

    def _targets(self, number: int | None) -> Iterator[tuple[str, Callable[[], None]]]:
        from .app import ProtoscopeApp  # here, not at the top: the app module imports this one

        app = self.app
        assert isinstance(app, ProtoscopeApp)
        model = app.model
        if model is not None:
            flows = range(len(model.index.flows))
            if number is None:  # by name: Go to asks the frame, the others select the first
                yield f"go to frame {NAMED} (asks its number)", app.action_go_to
                if len(flows):
                    yield f"go to flow {NAMED} (the first; add a number)", lambda: app.show_flow(0)
                if model.decoded.calls:
                    yield f"go to call {NAMED} (the first; add a number)", lambda: app.show_call(0)
                for name in app._extra_reports():
                    if model.shown_reports.get(name):
                        noun = clean(name[:-1] if name.endswith("s") else name)
                        yield (
                            f"go to {noun} {NAMED} (the first; add a number)",
                            lambda name=name: app.show_report_row(name, 0),  # type: ignore[misc]
                        )
            if number is not None:
                if 1 <= number <= len(model):
                    yield f"go to frame {number}", lambda: app.go_to_packet(number - 1)
                flows = range(number, number + 1) if number < len(model.index.flows) else range(0)
            for fid in list(flows)[:MAX_PALETTE_FLOWS]:
                label = clean(model.flow_label(fid))
                yield f"go to flow {fid} ({label})", lambda fid=fid: app.show_flow(fid)  # type: ignore[misc]
            calls = model.decoded.calls
            picked = [number] if number is not None and number < len(calls) else []
            for n in picked:
                yield f"go to call {n} ({clean(calls[n].get('path'))})", lambda n=n: app.show_call(n)  # type: ignore[misc]
            for name in app._extra_reports():
                rows = model.shown_reports.get(name, [])
                noun = clean(name[:-1] if name.endswith("s") else name)
                for n in [number] if number is not None and number < len(rows) else []:
                    yield f"go to {noun} {n}", lambda name=name, n=n: app.show_report_row(name, n)  # type: ignore[misc]
        for tab, title in app.tab_titles().items():
            yield f"show {title.lower()}", lambda tab=tab: app.show_tab(tab)  # type: ignore[misc]
        yield "show flows", app.open_flows
        for name, text in app.config.saved_filters.items():
            yield f"filter: {clean(name)} ({clean(text)})", lambda text=text: app.use_filter(text)  # type: ignore[misc]
        yield "save filter (asks a name for the filter in the bar)", app.ask_filter_name

    async def discover(self) -> Hits:
        for text, action in self._targets(None):
            if not text.startswith("go to flow") or NAMED in text:
                yield DiscoveryHit(text, action, text=text)

    async def search(self, query: str) -> Hits:
        words = query.lower().split()
        number = next((int(w) for w in words if w.isdigit()), None)
        matcher = self.matcher(query)
        for text, action in self._targets(number):
            score = matcher.match(text)
            if score > 0 or (number is not None and text.startswith("go to")):
                yield Hit(max(score, 0.5), matcher.highlight(text), action, text=text)
