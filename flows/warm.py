"""A warm start for stage processes: the flow keeps one process that has imported the heavy libraries (torch,
transformers, TRL, PEFT, MLflow, the stage modules), and each `rlaif exec STAGE` that DVC starts is forked from it
instead of importing them again.

Why: a stage's own work is often shorter than its imports (TRL and transformers' trainer take 10-15 s to import on
two cores), and a pipeline run starts one such process per stage. DVC still runs every stage (`dvc repro` runs the
command of dvc.yaml and records dvc.lock); only the command's start is faster.

How: the flow starts `python -m flows.warm_server SOCKET` and puts SOCKET in the stages' environment (WARM_ENV). The
`rlaif` command, seeing it, connects to the socket and hands over its arguments, working directory, environment and
its stdin/stdout/stderr (SCM_RIGHTS), then waits for the exit code. The server forks one child per request; the
child takes the request's environment, descriptors and directory, and runs the CLI. A child whose caller goes away
(a stage timeout kills `dvc repro` and the command under it) is killed with its process group. Without the server
(or when it cannot be reached) `rlaif exec` starts cold, as before.

This module, the callers' side, is imported by every `rlaif` command, so it imports only the standard library at its
top; the server (flows/warm_server.py) runs the CLI, so that the CLI never imports it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WARM_ENV = "RLAIF_WARM_SOCKET"
READY_TIMEOUT_S = 180.0  # the server's imports; a stage that waits longer starts cold


# -- the caller: `rlaif exec ...` -------------------------------------------------------------------------------
def run_warm(address: str, argv: list[str]) -> int | None:
    """Run `rlaif ARGV` in a child of the warm server; its exit code, or None when there is no server to use."""
    if not _wait_until_ready(Path(address)):
        return None
    try:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(address)
    except OSError:
        return None
    request = json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
    with client:
        try:
            socket.send_fds(client, [request + b"\n"], [0, 1, 2])
        except OSError:  # e.g. a closed stdin: start cold
            return None
        reply = client.makefile("rb").readline()  # the child's exit code, or EOF if the child died
    return int(reply) if reply.strip() else 1


def _wait_until_ready(address: Path) -> bool:
    """True once the server listens; False when it said it cannot serve (.cold), went away, or is too slow."""
    ready, cold = address.with_suffix(".ready"), address.with_suffix(".cold")
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not ready.exists():
        if cold.exists() or not address.parent.exists() or time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


# -- the flow's side --------------------------------------------------------------------------------------------
@contextlib.contextmanager
def warm_server(env: dict[str, str]):
    """Start the server in the background with the stages' environment; yield that environment with WARM_ENV set.
    The server imports while the first stage's `dvc repro` starts; the stage waits for it to be ready."""
    with tempfile.TemporaryDirectory(prefix="rlaif-warm-") as tmp:
        address = str(Path(tmp) / "stage.sock")
        server = subprocess.Popen([sys.executable, "-m", "flows.warm_server", address], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            yield {**env, WARM_ENV: address}
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
