"""A warm start for stage processes: the flow keeps one process that has imported the heavy libraries (torch,
transformers, TRL, PEFT, MLflow, the stage modules), and each `rlaif exec STAGE` that DVC starts is forked from it
instead of importing them again.

Why: a stage's own work is often shorter than its imports (TRL and transformers' trainer take 10-15 s to import on
two cores), and a pipeline run starts one such process per stage. DVC still runs every stage (`dvc repro` runs the
command of dvc.yaml and records dvc.lock); only the command's start is faster.

How: the flow starts `python -m flows.warm SOCKET` and puts SOCKET in the stages' environment (WARM_ENV). The
`rlaif` command, seeing it, connects to the socket and hands over its arguments, working directory, environment and
its stdin/stdout/stderr (SCM_RIGHTS), then waits for the exit code. The server forks one child per request; the
child takes the request's environment, descriptors and directory, and runs the CLI. A child whose caller goes away
(a stage timeout kills `dvc repro` and the command under it) is killed with its process group. Without the server
(or when it cannot be reached) `rlaif exec` starts cold, as before.

This module is imported by every `rlaif` command, so it imports only the standard library at its top.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

WARM_ENV = "RLAIF_WARM_SOCKET"
# what the stages import inside their functions (module:names, since transformers and TRL load a name on first use)
PRELOAD = ("torch",
           ("transformers:Trainer,TrainerCallback,AutoModelForCausalLM,AutoModelForSequenceClassification,"
            "AutoTokenizer,LlamaForCausalLM,PreTrainedTokenizerFast"),
           "trl:SFTTrainer,DPOTrainer,GRPOTrainer,RLOOTrainer,RewardTrainer", "peft:LoraConfig,PeftModel",
           "datasets:Dataset", "accelerate:PartialState", "sentence_transformers:SentenceTransformer",
           "mlflow:MlflowClient", "mlflow.pyfunc", "mlflow.store.tracking.sqlalchemy_store",
           "great_expectations", "great_expectations.expectations", "flows.cli")
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
        server = subprocess.Popen([sys.executable, "-m", "flows.warm", address], env=env,
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


# -- the server -------------------------------------------------------------------------------------------------
def serve(address: str) -> None:
    """Import PRELOAD, then fork a child per request until the parent (the flow) goes away or SIGTERM arrives."""
    import importlib

    parent = os.getppid()
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")  # torch.cuda.is_available() without starting CUDA
    for spec in PRELOAD:
        module, _, names = spec.partition(":")
        with contextlib.suppress(Exception):  # a library that fails to import here is imported cold by its stage
            loaded = importlib.import_module(module)
            for name in filter(None, names.split(",")):
                getattr(loaded, name)
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():  # a forked child could not use the GPU
        Path(address).with_suffix(".cold").touch()
        return
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address)
    listener.listen(8)
    listener.settimeout(1.0)
    Path(address).with_suffix(".ready").touch()
    while os.getppid() == parent:
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        if os.fork() == 0:
            listener.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os._exit(_serve_one(connection))
        connection.close()


def _serve_one(connection: socket.socket) -> int:
    """In the forked child: become the caller's process (directory, environment, descriptors) and run the CLI."""
    connection.settimeout(None)
    message, fds, _, _ = socket.recv_fds(connection, 1 << 20, 3)
    while not message.endswith(b"\n"):
        message += connection.recv(1 << 20)
    request = json.loads(message)
    os.setpgid(0, 0)  # its own group: killed whole (training workers included) if the caller goes away
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    threading.Thread(target=_die_with_caller, args=(connection,), daemon=True).start()
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    _apply_thread_settings()
    code = _run_cli(request["argv"])
    connection.sendall(f"{code}\n".encode())
    return code


def _die_with_caller(connection: socket.socket) -> None:
    """The caller sends nothing after its request: EOF means it was killed (a timeout, Ctrl-C)."""
    with contextlib.suppress(OSError):
        connection.recv(1)
    os.killpg(0, signal.SIGKILL)


def _apply_thread_settings() -> None:
    """torch read its thread count at import, in the server; a caller's OMP_NUM_THREADS still decides."""
    threads = os.environ.get("OMP_NUM_THREADS")
    if threads and threads.isdigit():
        import torch

        torch.set_num_threads(int(threads))


def _run_cli(argv: list[str]) -> int:
    import atexit
    import traceback

    from flows.cli import app

    sys.argv = ["rlaif", *argv]
    try:
        app(args=argv, prog_name="rlaif")
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:  # noqa: BLE001  what the interpreter prints before it exits 1
        traceback.print_exc()
        code = 1
    atexit._run_exitfuncs()  # what a normal exit runs (MLflow ends its runs, loggers flush)
    sys.stdout.flush()
    sys.stderr.flush()
    return code


if __name__ == "__main__":
    serve(sys.argv[1])
