"""Textual coach. The only package that imports Textual; the daemon never imports it."""
