"""Errors that make a capture unreadable as a whole (exit code 2 at the command line).

Damage inside an otherwise readable capture is never an exception: it becomes a finding.
"""


class CaptureError(Exception):
    """The input cannot be read as a capture at all; the message is one line for stderr."""
