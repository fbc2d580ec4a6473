"""Recordings: the native append-only format and the interchange CSV (import and export)."""
