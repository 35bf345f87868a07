"""Headless reports: the rows of each report as plain data, and their text/json/jsonl output."""

REPORTS = ("summary", "flows", "packets", "findings")
"""The reports every run has; each analysis (calls, streams, sessions, a plugin's) adds its own."""
