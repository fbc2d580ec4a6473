"""Shared test configuration."""

from __future__ import annotations

import os

from hypothesis import settings

# CI runs on a 2-core machine: keep property tests deterministic and bounded.
settings.register_profile("ci", derandomize=True, deadline=None, max_examples=60)
settings.register_profile("dev", deadline=None, max_examples=60)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
