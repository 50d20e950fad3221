"""One pipeline run at a time per project checkout.

Two runs in one checkout would write the same params/run.yaml, outputs and dvc.lock. The second run waits
for the first (an exclusive lock on .rlaif/pipeline.lock, released by the OS even when a run is killed)
and then finds the stages up to date, so it skips them instead of corrupting them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

LOCK_FILE = Path(".rlaif/pipeline.lock")


@contextlib.contextmanager
def project_lock(path: Path = LOCK_FILE, wait: bool = True) -> Iterator[bool]:
    """Hold the checkout's lock; yields True. With wait=False, yields False at once when another run holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                yield False
                return
            handle.seek(0)
            holder = handle.read().strip() or "another run"
            print(f"waiting for the pipeline run that holds {path} ({holder})", flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        handle.flush()
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
