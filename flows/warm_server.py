"""The warm server (flows/warm.py says why and how): it imports the heavy libraries once, then forks one child per
`rlaif exec` request, which becomes the caller's process and runs the CLI. Started by the flow as
`python -m flows.warm_server SOCKET`."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import threading
from pathlib import Path

# what the stages import inside their functions (module:names, since transformers and TRL load a name on first use)
PRELOAD = ("torch",
           ("transformers:Trainer,TrainerCallback,AutoModelForCausalLM,AutoModelForSequenceClassification,"
            "AutoTokenizer,LlamaForCausalLM,PreTrainedTokenizerFast"),
           "trl:SFTTrainer,DPOTrainer,GRPOTrainer,RLOOTrainer,RewardTrainer", "peft:LoraConfig,PeftModel",
           "datasets:Dataset", "accelerate:PartialState", "sentence_transformers:SentenceTransformer",
           "mlflow:MlflowClient", "mlflow.pyfunc", "mlflow.store.tracking.sqlalchemy_store",
           "great_expectations", "great_expectations.expectations", "matplotlib.pyplot", "flows.cli")

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
    _fill_package_caches()
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


def _fill_package_caches() -> None:
    """What each stage would read again from some 300 METADATA files (about a second each): the installed packages
    that every stage records, and MLflow's module-to-package map that it builds to log a model. Read here once,
    each child inherits them."""
    with contextlib.suppress(Exception):
        from rlaif.lifecycle.environment import installed_packages

        installed_packages()
    with contextlib.suppress(Exception):  # a private function: if a release renames it, a stage builds the map itself
        from mlflow.utils.requirements_utils import _init_packages_to_modules_map

        _init_packages_to_modules_map()


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
