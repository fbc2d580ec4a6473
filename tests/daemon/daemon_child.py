"""A daemon process on the simulated rig with the cheap stand-in pipeline (python daemon_child.py
SOCKET): the process-level tests signal it and watch its notify socket and file descriptors."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from daemon_helpers import SCENARIO, FakePipeline
from spinecoach.backend import Backend
from spinecoach.config import load_config
from spinecoach.daemon import Daemon

if __name__ == "__main__":
    daemon = Daemon(Backend.parse(f"sim:{SCENARIO}"), load_config([]), Path(sys.argv[1]),
                    pipeline_factory=FakePipeline)
    sys.exit(daemon.run())
