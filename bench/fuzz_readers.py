"""Fuzz every input reader with many more examples than the test suite draws (tests/test_fuzz_readers.py):
Hypothesis's "bench" profile, 2,000 freshly drawn examples per reader and kind of damage.

    python bench/fuzz_readers.py [-k READER]

Prints pytest's summary: one line per reader and kind of damage, and, for a failure, the smallest damaged file
that crashed the reader.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    command = [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "--hypothesis-profile=bench",
               "--hypothesis-show-statistics", str(ROOT / "tests/test_fuzz_readers.py"), *sys.argv[1:]]
    sys.exit(subprocess.run(command, cwd=ROOT).returncode)
