"""Headless reports: the rows of each report as plain data, and their text/json/jsonl output."""
