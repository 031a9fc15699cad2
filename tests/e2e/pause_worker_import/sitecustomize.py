"""Test hook, on PYTHONPATH for a `kycflow serve` under test: holds every spawned ML worker inside
its import of `app.ml.worker` (writing `<pid>` into KYCFLOW_TEST_PAUSE_WORKER_IMPORT first), so a
test can press Ctrl-C while the workers are surely still importing, not by luck of timing."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

_MARKERS = os.environ.get("KYCFLOW_TEST_PAUSE_WORKER_IMPORT")


class _PauseOnWorkerImport:
    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "app.ml.worker":
            sys.meta_path.remove(self)
            Path(_MARKERS or ".", str(os.getpid())).touch()
            time.sleep(120)  # the service stops the worker long before this ends
        return None


if _MARKERS and "--multiprocessing-fork" in sys.argv:  # spawned children only, never the service itself
    sys.meta_path.insert(0, _PauseOnWorkerImport())
