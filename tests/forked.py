"""Running a function in a forked child with its output in files and a hard time limit: the
soak and the hostile corpus import the engine once and fork a child per input."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

CHILD_FAILED = 70
"""Exit status of a child whose function raised (EX_SOFTWARE); its traceback is on its stderr."""


def run_forked(fn: Callable[[], None], out: Path, err: Path, limit_s: float) -> int | None:
    """Fork; in the child, send stdout and stderr to `out` and `err`, run `fn` and exit (0, or
    CHILD_FAILED if it raised). The child's exit status (negative: the signal that ended it), or
    None when it outlived `limit_s` and was killed."""
    pid = os.fork()
    if pid == 0:  # the child: never returns
        status = 0
        try:
            for fd, name in ((1, out), (2, err)):
                os.dup2(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
            fn()
            sys.stdout.flush()
        except BaseException:
            import traceback

            traceback.print_exc()
            status = CHILD_FAILED
        finally:
            sys.stderr.flush()
            os._exit(status)
    deadline = time.monotonic() + limit_s
    while True:
        done, wait_status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(wait_status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
        time.sleep(0.01)
