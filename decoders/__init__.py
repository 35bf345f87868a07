"""protoscope."""
