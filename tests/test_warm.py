"""The warm start of stage processes (flows/warm.py): `rlaif exec` forked from a server that has imported the heavy
libraries behaves like a cold start (exit code, messages, working directory), and dies with its caller."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from conftest import BIN, cli_env, make_project_copy
from flows.warm import WARM_ENV, warm_server


def exec_stage(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "rlaif"), "exec", *args], cwd=project, env=env, capture_output=True, text=True,
                          timeout=300)


def warm_children(env: dict[str, str]) -> list[psutil.Process]:
    """The processes the server forked (its socket path names it on its command line)."""
    servers = [p for p in psutil.process_iter(["cmdline"]) if env[WARM_ENV] in (p.info["cmdline"] or [])]
    return [child for server in servers for child in server.children(recursive=True)]


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
    with warm_server(cli_env(project)) as env:
        warm = exec_stage(project, env, *args)
        _, alive = psutil.wait_procs(warm_children(env), timeout=15)  # an exiting child can show as a zombie a while
        assert not alive, "the forked stage did not exit after it answered"
    assert cold.returncode not in (0, 1) and warm.returncode == cold.returncode
    assert "bad/labels.jsonl:1: not valid JSON" in cold.stderr
    assert warm.stderr.splitlines()[-1] == cold.stderr.splitlines()[-1]  # the error line, on the caller's stderr
    assert not (project / "bad" / "validate").exists()


@pytest.mark.slow
def test_a_killed_caller_takes_its_warm_stage_down_with_it(project: Path):
    """A stage timeout kills `dvc repro` and the `rlaif exec` under it: the forked stage (and anything it started)
    must not train on in the background."""
    with warm_server(cli_env(project)) as env:
        caller = subprocess.Popen([str(BIN / "rlaif"), "exec", "bootstrap", "--seed-dialogues",
                                   "data/seed/dialogues.jsonl", "--prompts", "data/prompts/train.jsonl",
                                   "--out", "artifacts/bootstrap"], cwd=project, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 240
        while not warm_children(env):
            assert caller.poll() is None and time.monotonic() < deadline, "no stage was forked"
            time.sleep(0.5)
        stage = warm_children(env)[0]
        time.sleep(2)
        os.kill(caller.pid, signal.SIGKILL)
        caller.wait()
        gone, alive = psutil.wait_procs([stage], timeout=15)
        assert not alive, f"the forked stage {stage.pid} outlived its caller"
    assert not (project / "artifacts" / "bootstrap" / "policy").exists()
