"""Shared fixtures. Telemetry is off and hubs are offline in every test; end-to-end tests run the real
CLI in a fresh copy of the project (its own git repo, DVC cache, MLflow SQLite file and Prefect home)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import suppress
from pathlib import Path
from typing import Callable, TypeVar

import pytest

from rlaif.training import models

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv's console scripts: rlaif, dvc, mlflow, prefect
SHARED_DATA = ROOT.parent / "shared" / "data"

for key, value in {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DVC_NO_ANALYTICS": "1",
    "GX_ANALYTICS_ENABLED": "false",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
    # a flow run in a test process starts Prefect's temporary server; on two busy cores it can take over the 20 s
    # Prefect waits by default (rlaif run sets the same)
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}.items():
    os.environ.setdefault(key, value)
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ.pop("PREFECT_API_URL", None)
for _name in ("LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY"):  # a developer's own server stays out of the tests
    os.environ.pop(_name, None)

# pytest-xdist workers share the cores. torch's default, a thread per core in each worker and in every stage process
# a worker starts, oversubscribes them (bench/oversubscription.py). Each worker gets its share of the cores, and its
# subprocesses inherit it.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_name, str(max(1, (os.cpu_count() or 1) // _WORKERS)))

# `make test` runs the files on parallel pytest-xdist workers: a flow run in-process starts Prefect's temporary
# server on PREFECT_HOME's database, which two workers must not share (the CLI tests set their own per project)
if "PYTEST_XDIST_WORKER" in os.environ and "PREFECT_HOME" not in os.environ:
    import tempfile

    os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix=f"prefect-{os.environ['PYTEST_XDIST_WORKER']}-")

# Hypothesis (tests/test_fuzz_readers.py): a bounded, repeatable set of examples in the suite; bench/fuzz_readers.py
# picks the "bench" profile (--hypothesis-profile=bench) for many more
from hypothesis import HealthCheck  # noqa: E402
from hypothesis import settings as hypothesis_settings  # noqa: E402

for _name, _examples, _fixed in (("ci", 100, True), ("bench", 2000, False)):
    hypothesis_settings.register_profile(_name, max_examples=_examples, deadline=None, derandomize=_fixed,
                                         suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
hypothesis_settings.load_profile("ci")

# The files that take longest, first: with `--dist loadfile` each file runs whole on one worker, and the worker
# that draws the end-to-end loop late would finish last.
LONGEST_FIRST = ["test_pipeline_e2e.py", "test_prefect_deployment.py", "test_real_model.py",
                 "test_reliability.py", "test_judge_stage.py", "test_scaleout.py", "test_judge_eval.py", "test_rounds.py"]


def pytest_collection_modifyitems(items):
    def rank(item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the tests of a file keep their order


JUDGE_ARGS = ["--candidates", "artifacts/generate/candidates.jsonl", "--constitution",
              "data/constitution/constitution.yaml", "--templates", "data/constitution/judge_templates.yaml",
              "--gold", "data/gold/pairs.jsonl", "--out", "artifacts/judge", "--metrics", "metrics/judge.json"]


def generate_args(policy: Path) -> list[str]:
    """`rlaif exec generate` as dvc.yaml runs it, with the policy at `policy`."""
    return ["exec", "generate", "--policy", str(policy), "--prompts", "data/prompts/train.jsonl",
            "--out", "artifacts/generate"]


def free_port() -> int:
    """A TCP port nothing listens on now, for a server a test starts on 127.0.0.1."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def project_files() -> list[Path]:
    """Tracked and untracked-but-not-ignored files: what a clean clone of this working tree holds."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    # dvc.lock of a local run is not part of a clean clone
    return [Path(p) for p in out.splitlines() if (ROOT / p).is_file() and p != "dvc.lock"]


_SESSION: list[pytest.TempPathFactory] = []


@pytest.fixture(scope="session", autouse=True)
def _session_temp(tmp_path_factory: pytest.TempPathFactory) -> None:
    _SESSION.append(tmp_path_factory)


def migrated_prefect_database() -> Path:
    """Prefect's database with its migrations applied, built once per session for every xdist worker (its
    folders share one parent). A fresh Prefect home migrates its database at the temporary server's first start,
    about 6 CPU-s on these cores, which each project copy would pay again."""
    from filelock import FileLock

    base = _SESSION[0].getbasetemp()
    shared = base.parent if "PYTEST_XDIST_WORKER" in os.environ else base
    database = shared / "prefect-migrated" / "prefect.db"
    with FileLock(str(shared / "prefect-migrated.lock")):
        if not database.exists():
            building = shared / "prefect-migrating"
            shutil.rmtree(building, ignore_errors=True)
            subprocess.run([str(BIN / "prefect"), "server", "database", "upgrade", "-y"], check=True,
                           capture_output=True, env={**os.environ, "PREFECT_HOME": str(building)})
            building.rename(database.parent)
    return database


def make_project_copy(target: Path) -> Path:
    """A clean clone of this working tree, committed, with a migrated Prefect database in its Prefect home."""
    for rel in project_files():
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.email=t@example.com", "-c", "user.name=test", "commit", "-qm", "copy"]):
        subprocess.run(cmd, cwd=target, check=True)
    (target / ".prefect").mkdir()
    shutil.copy2(migrated_prefect_database(), target / ".prefect/prefect.db")
    return target


def cli_env(project: Path) -> dict[str, str]:
    env = dict(os.environ)
    # MLflow calls made inside a test export MLFLOW_* variables (tracking URI, experiment, run):
    # a project's CLI must use its own file and experiment
    for key in [k for k in env if k.startswith("MLFLOW_") and k != "MLFLOW_DISABLE_TELEMETRY"]:
        del env[key]
    env["PREFECT_HOME"] = str(project / ".prefect")
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    return env


_WARM: dict[str, str] = {}


def warm_address() -> str:
    """This worker's warm server (flows/warm.py), started on first use and stopped at exit. A command a test runs
    (`rlaif exec STAGE`, `rlaif lineage`, ...) forks from it, as the stages of a pipeline run do, instead of
    importing torch, transformers, TRL and MLflow again. tests/test_warm.py checks that a warm command behaves as a
    cold one."""
    if not _WARM:
        import atexit
        from contextlib import ExitStack

        from flows.warm import WARM_ENV, warm_server

        stack = ExitStack()
        _WARM["address"] = stack.enter_context(warm_server(dict(os.environ)))[WARM_ENV]
        atexit.register(stack.close)
    return _WARM["address"]


# commands that start cold: `run` starts a warm server of its own; the others import no heavy library, and run in
# under a second, less than a first command waits for the server
COLD_COMMANDS = {"run", "configure", "check"}


def command_env(project: Path, args: tuple[str, ...] | list[str]) -> dict[str, str]:
    """cli_env, and for a command that imports the heavy libraries the address of the worker's warm server."""
    from flows.warm import WARM_ENV

    env = cli_env(project)
    if args and args[0] not in COLD_COMMANDS:
        env[WARM_ENV] = warm_address()
    return env


def rlaif(project: Path, *args: str, timeout: int = 900, tracking_uri: str | None = None) -> subprocess.CompletedProcess:
    env = command_env(project, args)
    if tracking_uri:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    return subprocess.run([str(BIN / "rlaif"), *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=timeout)


save_tiny_llama = models.save_tiny_llama  # test modules import it from here

# An MLflow server as the tests start one: one request worker and no job runner. Its defaults (4 workers, and a job
# runner with its queue consumers) start about ten Python processes, which two cores shared with the tests feel.
MLFLOW_SERVER_ARGS = ["--workers", "1"]
MLFLOW_SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}


def register_test_model(name: str, model_dir: Path, tags: dict | None = None) -> str:
    """A registered version (alias `challenger`) of a stand-in model folder, in the active tracking store;
    returns its version number. For tests of promotion and rounds, which read tags and aliases, not weights."""
    import mlflow

    from rlaif.registry import register_model

    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "config.json").write_text("{}")
    with mlflow.start_run():
        return register_model(model_dir, name, "policy", "test", alias="challenger", tags=tags)

Found = TypeVar("Found")


def kill_when(project: Path, args: list[str], condition: Callable[[int], Found], timeout_s: float, *,
              then_wait_s: float = 0.0, poll_s: float = 0.05) -> Found:
    """Start `rlaif *args` in `project`, wait until `condition(pid)` returns something truthy (and
    `then_wait_s` more), then SIGKILL its process group: a stage killed mid-way, with no chance to clean
    up. Returns what the condition returned; fails if the stage exits first or the condition never holds."""
    stage = " ".join(["rlaif", *args[:2]])
    # its own session, so that the kill reaches anything the stage started and nothing of pytest's
    process = subprocess.Popen([str(BIN / "rlaif"), *args], cwd=project, env=command_env(project, args),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        found = poll_while_running(process, lambda: stage_pid(process, args), condition, timeout_s, poll_s)
        time.sleep(then_wait_s)
        assert process.poll() is None, f"{stage} exited ({process.returncode}) before it could be killed"
        assert found, f"{stage}: the condition did not hold within {timeout_s:.0f} s"
        return found
    finally:
        with suppress(ProcessLookupError):  # no group left when the stage exited on its own
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        wait_for_warm_stages()


def wait_for_warm_stages(timeout_s: float = 30.0) -> None:
    """A warm stage whose caller was killed dies a moment later (its watcher sees the caller's socket close): wait
    for it, so that what a test reads or starts next meets no stage of the killed one."""
    if not _WARM:
        return
    import psutil

    _, alive = psutil.wait_procs(warm_children(recursive=True), timeout=timeout_s)
    assert not alive, f"warm stages still running {timeout_s:.0f} s after their caller was killed: {alive}"


def stage_pid(caller: subprocess.Popen, args: list[str]) -> int | None:
    """The process doing the stage's work: the caller itself, or for a warm stage the server's child that runs it
    (None until it is forked)."""
    if not _WARM or not args or args[0] in COLD_COMMANDS:
        return caller.pid
    children = warm_children(recursive=False)  # the newest: the stage this caller started
    return max(children, key=lambda child: child.started).pid if children else None


def warm_children(recursive: bool = True) -> list:
    """The processes this worker's warm server has forked (and theirs), as psutil sees them now: a child may exit
    while it is being listed, which is not an error here."""
    import psutil

    found = []
    for server in psutil.process_iter(["cmdline"]):
        if _WARM["address"] not in (server.info["cmdline"] or []):
            continue
        with suppress(psutil.NoSuchProcess):
            for child in server.children(recursive=recursive):
                with suppress(psutil.NoSuchProcess):
                    child.started = child.create_time()
                    found.append(child)
    return found


def poll_while_running(process: subprocess.Popen, pid: Callable[[], int | None], condition: Callable[[int], Found],
                       timeout_s: float, poll_s: float) -> Found | None:
    """The first truthy `condition(pid())`; None once the process has exited or `timeout_s` have passed."""
    deadline = time.monotonic() + timeout_s
    while process.poll() is None and time.monotonic() < deadline:
        if (worker := pid()) is not None and (found := condition(worker)):
            return found
        time.sleep(poll_s)
    return None


class Service:
    """A server process in its own process group, logging to a file; stop() ends that group only."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path, cwd: Path | None = None):
        self.name, self.log_path = name, log
        self._log = open(log, "wb")
        self.proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)

    def tail(self, n: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-n:]

    def wait_for(self, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.3)
        pytest.fail(f"{self.name} not ready at {url} after {timeout:.0f} s:\n{self.tail()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log.close()


@pytest.fixture(autouse=True)
def isolate_mlflow_environment():
    """A stage run in-process sets MLflow's tracking URI and experiment for the whole process: undo it."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("MLFLOW_")}
    yield
    for key in [k for k in os.environ if k.startswith("MLFLOW_")]:
        del os.environ[key]
    os.environ.update(saved)


@pytest.fixture
def tracking(tmp_path: Path, monkeypatch) -> str:
    """A fresh MLflow store (SQLite in tmp_path) as the tracking URI, with its own active experiment."""
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("test")  # not the experiment id an earlier test left active in another store
    return uri


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project_copy(tmp_path / "project")
