"""DESIGN.md's import rules, checked in fresh interpreters: the headless parts never load textual,
decoders never load scapy, textual or the inspector, and captures never load the inspector."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHECK = """
import sys, importlib, pkgutil
import protoscope.{package} as root
for info in pkgutil.walk_packages(root.__path__, root.__name__ + "."):
    if ".tui" in info.name:
        continue
    importlib.import_module(info.name)
top = {forbidden}
bad = sorted(m for m in sys.modules if m.split(".")[0] in top or any(m.startswith(p) for p in {prefixes}))
print(",".join(bad))
"""

RULES = {
    "decoders": ({"textual", "scapy"}, ["protoscope.inspector", "protoscope.captures"]),
    "captures": ({"textual"}, ["protoscope.inspector"]),
    "inspector": ({"textual"}, []),
}


@pytest.mark.parametrize("package", sorted(RULES))
def test_import_rules(package: str) -> None:
    forbidden, prefixes = RULES[package]
    code = CHECK.format(package=package, forbidden=forbidden, prefixes=prefixes)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "", f"protoscope.{package} loads {out.strip()}"
