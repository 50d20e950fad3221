"""How long the tests take a newcomer: a fresh clone of this checkout, `make test` (or `make test-fast`) with its
install, timed. Prints the install's seconds, pytest's, and the seconds of each test file (pytest --durations=0,
summed per file), slowest first.

    .venv/bin/python bench/test_time.py [--tier fast|all] [--workers N] [--empty-caches]

--workers defaults to the Makefile's TEST_WORKERS. --empty-caches gives the install new, empty uv and pip caches (every
package downloaded, as on a fresh machine). pytest's log, with every test's duration, is kept beside the clone.

The clone gets its own virtual environment (the install is part of the figure) and sits beside this checkout, so
that ../shared is found as in CI.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DURATION = re.compile(r"^(?P<seconds>[\d.]+)s (?:call|setup|teardown)\s+(?P<file>[^:\s]+)::")
SUMMARY = re.compile(r"(\d+ passed.*) in ([\d.]+)s")


def timed(command: list[str], cwd: Path, log: Path, env: dict) -> tuple[int, float]:
    started = time.perf_counter()
    with log.open("w") as out:
        code = subprocess.run(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env, check=False).returncode
    return code, time.perf_counter() - started


def per_file(log: str) -> dict[str, float]:
    seconds: dict[str, float] = defaultdict(float)
    for line in log.splitlines():
        if match := DURATION.match(line.strip()):
            seconds[match["file"]] += float(match["seconds"])
    return dict(sorted(seconds.items(), key=lambda item: -item[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tier", choices=["fast", "all"], default="all")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--empty-caches", action="store_true", help="install with new, empty uv and pip caches")
    args = parser.parse_args(argv)
    clone = ROOT.parent / f".bench-test-time-{args.tier}"
    shutil.rmtree(clone, ignore_errors=True)
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    env = dict(os.environ)
    if args.empty_caches:
        caches = Path(tempfile.mkdtemp(prefix="bench-test-time-caches-"))
        env.update(UV_CACHE_DIR=str(caches / "uv"), PIP_CACHE_DIR=str(caches / "pip"))
    try:
        target = "test-fast" if args.tier == "fast" else "test"
        code, install = timed(["make", ".venv/.installed-test"], clone, clone / "install.log", env)
        if code:
            print(f"install failed: {clone / 'install.log'}")
            return code
        workers = [f"TEST_WORKERS={args.workers}"] if args.workers else []
        code, tests = timed(["make", target, *workers, "PYTEST_ARGS=--durations=0"], clone, clone / "tests.log", env)
        log = (clone / "tests.log").read_text()
        kept = shutil.copy(clone / "tests.log", ROOT.parent / f"{clone.name}.log")
        summary = SUMMARY.search(log)
        shown = f"{args.workers} workers" if args.workers else "the Makefile's workers"
        caches = "empty caches" if args.empty_caches else "caches as they are"
        print(f"make {target} in a fresh clone ({shown}, {caches}): install {install:.0f} s, tests {tests:.0f} s, "
              f"together {install + tests:.0f} s ({(install + tests) / 60:.1f} min); exit {code}")
        if summary:
            print(f"pytest: {summary[1]} in {float(summary[2]):.0f} s")
        for name, seconds in list(per_file(log).items())[:15]:
            print(f"  {seconds:7.0f} s  {name}")
        print(f"pytest's log: {kept}")
        return code
    finally:
        if code == 0:
            shutil.rmtree(clone, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
