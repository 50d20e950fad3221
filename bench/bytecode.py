"""Seconds a new process spends importing what a stage imports (torch, transformers' Trainer, TRL, PEFT, MLflow, Great
Expectations, the CLI: flows/warm.py's PRELOAD), with the venv's compiled bytecode and without it, side by side.

Without it is what a venv installed by uv without --compile-bytecode gives where PYTHONDONTWRITEBYTECODE is set (as on
this project's CI machines): Python finds no .pyc and may not write one, so every process compiles the sources
again. The bench gets that case without touching the venv: PYTHONPYCACHEPREFIX points at an empty folder, where no
.pyc is found and none is written.

    python bench/bytecode.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMPORT_WHAT_A_STAGE_IMPORTS = """
import importlib
from flows.warm_server import PRELOAD
for spec in PRELOAD:
    module, _, names = spec.partition(":")
    loaded = importlib.import_module(module)
    for name in filter(None, names.split(",")):
        getattr(loaded, name)
"""


def seconds(env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", IMPORT_WHAT_A_STAGE_IMPORTS], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    base = {**os.environ, "HF_HUB_OFFLINE": "1", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1",
            "GX_ANALYTICS_ENABLED": "false", "PYTHONDONTWRITEBYTECODE": "1"}
    with tempfile.TemporaryDirectory(prefix="no-pyc-") as empty:
        without = {**base, "PYTHONPYCACHEPREFIX": empty}
        seconds(base)  # the page cache warm for both
        timings: dict[str, list[float]] = {"compiled bytecode": [], "no bytecode": []}
        for _ in range(args.repeats):  # alternated, since this machine is noisy
            timings["compiled bytecode"].append(seconds(base))
            timings["no bytecode"].append(seconds(without))
    for name, values in timings.items():
        print(f"{name:18s} median {statistics.median(values):5.2f} s  ({', '.join(f'{v:.2f}' for v in values)})")
    ratio = statistics.median(timings["no bytecode"]) / statistics.median(timings["compiled bytecode"])
    print(f"a stage's imports take {ratio:.2f}x as long without compiled bytecode")


if __name__ == "__main__":
    main()
