#!/usr/bin/env bash
# Sets up a virtual environment and runs every check: ruff, mypy and the test suite.
# Usage (from the repository root): bash tests/run.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# mypy cannot follow setuptools' package-dir mapping (captures/ -> protoscope.captures), so it
# checks the packages through a temporary protoscope/ tree of links.
typed=$(mktemp -d)
trap 'rm -rf "$typed"' EXIT
mkdir "$typed/protoscope"
for d in captures decoders inspector; do ln -s "$PWD/$d" "$typed/protoscope/$d"; done
MYPYPATH="$typed" .venv/bin/mypy -p protoscope.captures -p protoscope.decoders -p protoscope.inspector
.venv/bin/python -m pytest "$@"
