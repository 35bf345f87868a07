"""The cache of the code dataclasses generates: same classes, no compile the second time."""

from __future__ import annotations

import dataclasses
import marshal
import subprocess
import sys
import types
from pathlib import Path

import pytest

from protoscope.decoders import codecache

DEFINE = """
import dataclasses, json, sys
__name__ = "protoscope_codecache_check"  # a module of ours, whose dataclasses are cached
sys.modules[__name__] = sys.modules["__main__"]
sys.dont_write_bytecode = False
from protoscope.decoders import codecache
codecache.install()  # as the package's import did already
codecache.PATH = {path!r}  # this test's cache instead of the package's
codecache._codes.clear()
codecache._added = False
codecache._load()
known = len(codecache._codes)

@dataclasses.dataclass(frozen=True, slots=True)
class Point:
    x: int
    y: int = 0

p = Point(1)
try:
    p.x = 2
    frozen = False
except dataclasses.FrozenInstanceError:
    frozen = True
print(json.dumps({{"known": known, "added": codecache._added, "repr": repr(p), "eq": p == Point(1, 0),
                  "hash": hash(p) == hash(Point(1)), "frozen": frozen}}))
"""


def define_in_a_fresh_interpreter(path: Path) -> dict[str, object]:
    import json

    out = subprocess.run(
        [sys.executable, "-c", DEFINE.format(path=str(path))], capture_output=True, text=True, check=True
    ).stdout
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def test_a_second_run_compiles_nothing_and_the_class_is_the_same(tmp_path: Path) -> None:
    cache = tmp_path / "dataclasses.bin"
    first = define_in_a_fresh_interpreter(cache)
    assert first["added"] is True and cache.exists()
    second = define_in_a_fresh_interpreter(cache)
    assert second["added"] is False
    assert isinstance(second["known"], int) and second["known"] > 0
    for result in (first, second):
        assert result["repr"] == "Point(x=1, y=0)"
        assert result["eq"] is True and result["hash"] is True and result["frozen"] is True


def test_a_damaged_cache_is_ignored(tmp_path: Path) -> None:
    cache = tmp_path / "dataclasses.bin"
    cache.write_bytes(b"\x00not marshal")
    assert define_in_a_fresh_interpreter(cache)["repr"] == "Point(x=1, y=0)"
    cache.write_bytes(marshal.dumps({"def f(): pass": 3}))
    assert define_in_a_fresh_interpreter(cache)["repr"] == "Point(x=1, y=0)"


CLASS = """
import dataclasses

@dataclasses.dataclass(frozen=True)
class Annotated:
    n: int
    s: "list[str]" = dataclasses.field(default_factory=list)
"""


def define(name: str) -> type:
    module = types.ModuleType(name)
    sys.modules[name] = module
    try:
        exec(CLASS, module.__dict__)
    finally:
        del sys.modules[name]
    cls: type = module.Annotated
    return cls


def test_generated_code_is_what_dataclasses_compiles_itself() -> None:
    """Compiled as `exec` compiles it for dataclasses: not with this module's __future__ flags."""
    codecache.install()
    before = len(codecache._codes)
    cached = define("protoscope_codecache_check")
    assert len(codecache._codes) > before  # it went through the cache
    del dataclasses.exec  # type: ignore[attr-defined]
    try:
        plain = define("protoscope_codecache_check")
    finally:
        dataclasses.exec = codecache._exec  # type: ignore[attr-defined]
    for name in ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__"):
        ours, theirs = getattr(cached, name), getattr(plain, name)
        assert ours.__code__.co_code == theirs.__code__.co_code, name
        assert ours.__code__.co_flags == theirs.__code__.co_flags, name
        assert ours.__annotations__ == theirs.__annotations__, name


def test_other_libraries_classes_are_not_cached() -> None:
    codecache.install()
    before = len(codecache._codes)
    define("somebody_else")
    assert len(codecache._codes) == before


@pytest.mark.skipif(sys.platform == "win32", reason="permissions")
def test_a_read_only_place_is_no_error(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        result = define_in_a_fresh_interpreter(folder / "sub" / "dataclasses.bin")
    finally:
        folder.chmod(0o700)
    assert result["repr"] == "Point(x=1, y=0)"
