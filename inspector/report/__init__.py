"""Headless reports: the rows of each report as plain data, and their text/json/jsonl output."""

REPORTS = (
    "summary",
    "flows",
    "packets",
    "findings",
    "hierarchy",
    "endpoints",
    "conversations",
    "io",
    "methods",
    "follow",
)
"""The reports every run has; each analysis (calls, streams, sessions, a plugin's) adds its own.
hierarchy, endpoints, conversations, io and methods are Wireshark's Statistics (`inspector/stats.py`);
follow is its Follow Stream (`inspector/follow.py`)."""
