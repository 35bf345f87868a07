"""The Textual viewer: a thin layer over inspector.model (the only package that imports textual)."""
