"""The warm start of stage processes (flows/warm.py): `rlaif exec` forked from a server that has imported the heavy
libraries behaves like a cold start (exit code, messages, working directory), and dies with its caller; which
commands go to the server; a server that cannot fork safely (CUDA started in it) sends its callers back cold."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from conftest import BIN, ROOT, cli_env, make_project_copy, warm_address, warm_children

from flows.warm import WARM_ENV


def exec_stage(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "rlaif"), "exec", *args], cwd=project, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return make_project_copy(tmp_path_factory.mktemp("warm"))


def test_a_warm_stage_fails_like_a_cold_one_naming_the_bad_file(project: Path):
    """Bad input through the warm server: the same exit code and error (on the caller's stderr), a relative path
    read from the caller's directory."""
    (project / "bad").mkdir(exist_ok=True)
    (project / "bad" / "labels.jsonl").write_text('{"pair_id": "x"\n')
    args = ("validate", "--labels", "bad/labels.jsonl", "--out", "bad/validate", "--report", "bad/report")
    cold = exec_stage(project, cli_env(project), *args)
    env = {**cli_env(project), WARM_ENV: warm_address()}  # this worker's server (tests/conftest.py)
    warm = exec_stage(project, env, *args)
    _, alive = psutil.wait_procs(warm_children(), timeout=15)  # an exiting child can show as a zombie a while
    assert not alive, "the forked stage did not exit after it answered"
    assert cold.returncode not in (0, 1) and warm.returncode == cold.returncode
    assert "bad/labels.jsonl:1: not valid JSON" in cold.stderr
    assert warm.stderr.splitlines()[-1] == cold.stderr.splitlines()[-1]  # the error line, on the caller's stderr
    assert not (project / "bad" / "validate").exists()


@pytest.mark.slow
def test_a_killed_caller_takes_its_warm_stage_down_with_it(project: Path):
    """A stage timeout kills `dvc repro` and the `rlaif exec` under it: the forked stage (and anything it started)
    must not train on in the background."""
    env = {**cli_env(project), WARM_ENV: warm_address()}
    caller = subprocess.Popen([str(BIN / "rlaif"), "exec", "bootstrap", "--seed-dialogues",
                               "data/seed/dialogues.jsonl", "--prompts", "data/prompts/train.jsonl",
                               "--out", "artifacts/bootstrap"], cwd=project, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not warm_children():
        assert caller.poll() is None and time.monotonic() < deadline, "no stage was forked"
        time.sleep(0.5)
    stage = warm_children()[0]
    time.sleep(2)
    os.kill(caller.pid, signal.SIGKILL)
    caller.wait()
    gone, alive = psutil.wait_procs([stage], timeout=15)
    assert not alive, f"the forked stage {stage.pid} outlived its caller"
    assert not (project / "artifacts" / "bootstrap" / "policy").exists()


class RecordingServer:
    """A stand-in at the warm server's address that records what each caller asks and answers an exit code: which
    commands go to a warm server, seen from the caller's side."""

    def __init__(self, address: Path, exit_code: int):
        self.requests: list[dict] = []
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(address))
        self._listener.listen(4)
        address.with_suffix(".ready").touch()
        threading.Thread(target=self._answer, args=(exit_code,), daemon=True).start()

    def _answer(self, exit_code: int) -> None:
        while True:
            connection, _ = self._listener.accept()
            with connection:
                message, fds, _, _ = socket.recv_fds(connection, 1 << 20, 3)
                while not message.endswith(b"\n"):
                    message += connection.recv(1 << 20)
                for fd in fds:
                    os.close(fd)
                self.requests.append(json.loads(message))
                connection.sendall(f"{exit_code}\n".encode())


def test_every_command_but_run_goes_to_the_warm_server_with_its_directory_and_environment(project: Path, tmp_path):
    address = tmp_path / "stage.sock"
    server = RecordingServer(address, exit_code=7)
    env = {**cli_env(project), WARM_ENV: str(address)}
    for command in (["exec", "validate", "--labels", "x.jsonl"], ["lineage", "models:/rlaif-policy/1"], ["history"]):
        result = subprocess.run([str(BIN / "rlaif"), *command], cwd=project, env=env, capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 7, result.stderr  # the server's answer is the command's exit code
    assert [r["argv"] for r in server.requests] == [["exec", "validate", "--labels", "x.jsonl"],
                                                    ["lineage", "models:/rlaif-policy/1"], ["history"]]
    assert {r["cwd"] for r in server.requests} == {str(project)} and server.requests[0]["env"][WARM_ENV] == str(address)

    # `rlaif run` starts cold (its own warm server and Prefect's): a params file that does not exist is its own error
    result = subprocess.run([str(BIN / "rlaif"), "run", "--params", "params/missing.yaml"], cwd=project, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "params/missing.yaml" in result.stdout + result.stderr, result.stderr
    assert len(server.requests) == 3


def test_a_server_with_cuda_started_sends_its_callers_back_cold(project: Path, tmp_path):
    """A process that has initialised CUDA cannot hand the GPU to forked children: the server says so (.cold) and
    exits, and a stage started meanwhile runs cold with the same result. This machine has no GPU, so the server is
    told that CUDA is initialised."""
    address = tmp_path / "stage.sock"
    script = ("import sys, torch; torch.cuda.is_initialized = lambda: True; import flows.warm_server as warm; "
              "warm.PRELOAD = ('torch',); warm.serve(sys.argv[1])")
    server = subprocess.run([sys.executable, "-c", script, str(address)], cwd=ROOT, env=cli_env(project),
                            capture_output=True, text=True, timeout=120)
    assert server.returncode == 0, server.stderr
    assert address.with_suffix(".cold").exists() and not address.with_suffix(".ready").exists()
    assert not address.exists()  # it never listened

    (project / "bad").mkdir(exist_ok=True)
    (project / "bad" / "labels.jsonl").write_text('{"pair_id": "x"\n')
    args = ("validate", "--labels", "bad/labels.jsonl", "--out", "bad/validate", "--report", "bad/report")
    started = time.monotonic()
    cold = exec_stage(project, {**cli_env(project), WARM_ENV: str(address)}, *args)
    assert time.monotonic() - started < 120  # it did not wait for a server that will never be ready (180 s)
    assert cold.returncode == 2 and "bad/labels.jsonl:1: not valid JSON" in cold.stderr, cold.stderr
