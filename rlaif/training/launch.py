"""Multi-process training: a stage whose params ask for several processes starts itself again under
`accelerate launch`, one process per GPU (or CPU processes for a test), and waits for them.

Only the main process talks to MLflow, writes outputs and registers models; the others train and
leave once training is done (`release_workers`). dvc.yaml does not change: the process count is a
param like any other, so changing it reruns the stage.
"""

from __future__ import annotations

import os
import subprocess
import sys

LAUNCHED_ENV = "RLAIF_LAUNCHED"


def rank() -> int:
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")))


def is_main_process() -> bool:
    return rank() == 0


def relaunch_if_needed(num_processes: int) -> int | None:
    """Start this same command under `accelerate launch` with `num_processes` processes and return
    its exit code; None when one process is asked for or this already is a launched process."""
    if num_processes <= 1 or os.environ.get(LAUNCHED_ENV):
        return None
    # --multi_gpu selects accelerate's torchrun launcher, which also serves CPU processes: the
    # trainers then run with use_cpu and a gloo process group (accelerate's --cpu flag starts one process)
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
               str(num_processes), "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "-m", "flows", *sys.argv[1:]]
    return subprocess.run(command, env={**os.environ, LAUNCHED_ENV: "1"}).returncode


def release_workers(stage: str) -> None:
    """After training: every process waits for the others, then all but the main one exit."""
    from accelerate import PartialState

    state = PartialState()
    if state.num_processes > 1:
        from rich.console import Console

        if state.is_main_process:
            Console(stderr=True).print(f"{stage}: trained data-parallel on {state.num_processes} processes")
        state.wait_for_everyone()
        state.destroy_process_group()  # the main process goes on alone: no collective calls after this
        if not state.is_main_process:
            raise SystemExit(0)
