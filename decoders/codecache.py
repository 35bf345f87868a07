"""Compiled once: the methods `dataclasses` generates, kept like bytecode between runs.

Defining a dataclass compiles the source of every method it generates, each time the module is
imported: about 4 million instructions for a frozen, slotted one (valgrind), so the 64 dataclasses of
a summary run cost ~240M instructions, more than importing numpy (~310M) and half of protoscope's own
start-up. The compiled code depends only on the generated text, so this module gives `dataclasses` an
`exec` that looks the text up in a cache first; the cache is marshalled beside this package's `.pyc`
files (as Python keeps those, and not when it is told not to write bytecode) and read once per run.
A text not in the cache is compiled as `dataclasses` would have compiled it, so a changed class can
never get stale code.
"""

from __future__ import annotations

import atexit
import dataclasses
import marshal
import os
import sys
from types import CodeType
from typing import Any

PATH = os.path.join(
    os.path.dirname(__file__), "__pycache__", f"dataclasses.{sys.implementation.cache_tag}.bin"
)
OURS = ("protoscope", "protoscope_")
"""Modules whose dataclasses are cached: ours and plugin files (loaded as `protoscope_plugin_*`)."""
_codes: dict[str, CodeType] = {}
_added = False


def _exec(source: str | CodeType, globals: dict[str, Any] | None = None, locals: Any = None, /) -> None:
    global _added
    # Only protoscope's own classes (and plugins'): the viewer's libraries define hundreds, which
    # would make every headless run read their code too.
    if isinstance(source, str) and str((globals or {}).get("__name__", "")).startswith(OURS):
        code = _codes.get(source)
        if code is None:
            # dont_inherit: as `exec` compiles for dataclasses, without this module's __future__ flags
            code = _codes[source] = compile(source, "<string>", "exec", dont_inherit=True)
            _added = True
        source = code
    exec(source, globals, locals)


def _load() -> None:
    try:
        with open(PATH, "rb") as f:
            cached = marshal.loads(f.read())  # marshal.load(f) reads in small steps: 12x the cost
    except (OSError, EOFError, ValueError, TypeError):
        return
    if isinstance(cached, dict):
        _codes.update((k, v) for k, v in cached.items() if isinstance(k, str) and isinstance(v, CodeType))


def _save() -> None:
    if not _added or sys.dont_write_bytecode:
        return
    try:
        os.makedirs(os.path.dirname(PATH), exist_ok=True)
        partial = f"{PATH}.{os.getpid()}"
        with open(partial, "wb") as f:
            marshal.dump(_codes, f)
        os.replace(partial, PATH)  # whole or not at all, whoever writes last
    except OSError:
        pass  # a read-only install: the next run compiles again, as without the cache


def install() -> None:
    """Give `dataclasses` the caching `exec` (once per process)."""
    if getattr(dataclasses, "exec", None) is _exec:
        return
    _load()
    dataclasses.exec = _exec  # type: ignore[attr-defined]  # found before the builtin by its functions
    atexit.register(_save)
