"""The flow's DVC plumbing: the stage graph and which stages are stale (`dvc status`), one stage through `dvc repro`
with a timeout, its earlier outputs backed up and restored when an attempt fails, DVC's locks left by killed
processes, `dvc commit` of an output changed on purpose, and pull/push with a default remote."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from rlaif.data.io import write_text
from rlaif.lifecycle.tracking import EVENTS_ENV

TIMED_OUT = 124  # the exit code timeout(1) uses


def stage_graph() -> list[tuple[str, list[str]]]:
    """(stage, upstream stages) in dependency order, from dvc.yaml via DVC's index."""
    return _stage_view()[0]


def stage_outputs(stage: str) -> list[tuple[Path, bool]]:
    """(path, cached by DVC) of every output dvc.yaml declares for the stage."""
    return _stage_view()[1][stage]


StageView = tuple[list[tuple[str, list[str]]], dict[str, list[tuple[Path, bool]]]]
# DVC builds its index from dvc.yaml in about half a second: once per version of dvc.yaml, not once per stage a run
# starts (keyed by the checkout and dvc.yaml's modification time and size)
_VIEWS: dict[tuple[str, int, int], StageView] = {}


def _stage_view(repo=None) -> StageView:
    found = Path("dvc.yaml").stat()
    key = (str(Path.cwd()), found.st_mtime_ns, found.st_size)
    if key not in _VIEWS:
        if repo is None:
            from dvc.repo import Repo

            with Repo(".") as opened:
                _VIEWS[key] = _view_of(opened)
        else:
            _VIEWS[key] = _view_of(repo)
    return _VIEWS[key]


def _view_of(repo) -> StageView:
    import networkx as nx

    graph = repo.index.graph  # edges point from a stage to the stages it depends on
    written = {stage.name: i for i, stage in enumerate(repo.index.stages)}
    # dependencies first; among stages that are free to go, dvc.yaml's order
    order = nx.lexicographical_topological_sort(graph.reverse(), key=lambda s: written[s.name])
    edges = [(s.name, sorted(d.name for d in graph.successors(s))) for s in order]
    outputs = {s.name: [(Path(out.def_path), bool(out.use_cache)) for out in s.outs] for s in repo.index.stages}
    return edges, outputs


FAILED_ATTEMPTS = Path(".rlaif/failed")  # what a failed stage left, for diagnosis; outside DVC's outputs


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def copy_uncached_outputs(outputs: list[tuple[Path, bool]], backup: Path) -> None:
    """DVC deletes a stage's outputs before running it, and keeps no copy of those it does not cache
    (metrics, reports): copy them aside first, so that a failed attempt can put them back."""
    for path, cached in outputs:
        if not cached and path.exists():
            (backup / path).parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if path.is_dir() else shutil.copy2)(path, backup / path)


def restore_earlier_outputs(stage: str, outputs: list[tuple[Path, bool]], backup: Path) -> str:
    """After a failed attempt: what it left goes to .rlaif/failed/STAGE/, and the outputs the stage had before
    are put back, the cached ones by `dvc checkout` as dvc.lock records them, the others from the copy taken
    before the run. Returns what was done, for the failure message."""
    failed = FAILED_ATTEMPTS / stage
    remove(failed)
    left = [path for path, _ in outputs if path.exists() or path.is_symlink()]
    for path in left:
        (failed / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), str(failed / path))
    for path, cached in outputs:
        if not cached and (backup / path).exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(backup / path), str(path))
    result = dvc("checkout", "--force", "--allow-missing", stage)
    restored = [str(path) for path, _ in outputs if path.exists()]
    lines = [f"stage {stage} failed: its earlier outputs were kept"
             + (f" ({', '.join(restored)}, as dvc.lock records them)" if restored else " (it had none)")]
    if result.returncode != 0:
        lines.append(f"warning: dvc checkout {stage} could not restore every cached output: "
                     f"{(result.stderr or result.stdout).strip()[-300:]}")
    if left:
        lines.append(f"what the failed attempt wrote is in {failed}/ (e.g. {failed / left[0]})")
    lines.append(f"retry once fixed: rlaif stage {stage} (or rlaif run)")
    return "\n".join(lines)


def with_venv_on_path(env: dict[str, str]) -> dict[str, str]:
    """dvc and the `rlaif exec` commands it runs live next to this interpreter (a venv that is not activated)."""
    return {**env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"}


def kill_tree(pid: int) -> None:
    """SIGKILL a process and everything under it (dvc, the stage, accelerate's workers)."""
    import psutil

    try:
        parent = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    for process in [*parent.children(recursive=True), parent]:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass


def clear_stale_dvc_locks(lock_file: Path = Path(".dvc/tmp/rwlock")) -> list[int]:
    """Drop DVC's read/write locks held by processes that are gone or zombies (a stage killed with kill -9
    leaves them; DVC then refuses the rerun). Only this run's flow starts DVC in this checkout (the project
    lock), so a live holder is someone else's command and is kept. Returns the pids dropped."""
    import psutil

    if not lock_file.exists():
        return []
    try:
        lock = json.loads(lock_file.read_text(encoding="utf-8") or "{}")
    except json.JSONDecodeError:
        return []

    def alive(info: dict) -> bool:
        try:
            return psutil.Process(info["pid"]).status() != psutil.STATUS_ZOMBIE
        except (psutil.NoSuchProcess, KeyError):
            return False

    write = lock.get("write", {})
    read = lock.get("read", {})
    dropped = [i["pid"] for i in write.values() if not alive(i)] + \
              [i["pid"] for infos in read.values() for i in infos if not alive(i)]
    if dropped:
        lock["write"] = {path: info for path, info in write.items() if alive(info)}
        lock["read"] = {path: kept for path, infos in read.items() if (kept := [i for i in infos if alive(i)])}
        write_text(lock_file, json.dumps(lock))
    return sorted(set(dropped))


def dvc_repro(stage: str, force: bool, env: dict[str, str], timeout_s: float | None = None) -> int:
    """Run one stage through DVC; return the stage's own exit code (DVC reports every failure as 255).
    Past `timeout_s` the stage and every process under it (dvc, training workers) are killed."""
    stale = clear_stale_dvc_locks()
    if stale:
        print(f"removed DVC locks left by killed processes {stale}")
    outputs = stage_outputs(stage)
    Path(".rlaif").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"earlier-{stage}-", dir=".rlaif") as backup:
        copy_uncached_outputs(outputs, Path(backup))
        code = run_dvc_repro(stage, force, with_venv_on_path(env), timeout_s)
        if code != 0:
            Console(stderr=True).print(restore_earlier_outputs(stage, outputs, Path(backup)), highlight=False,
                                       soft_wrap=True)
    return code


def run_dvc_repro(stage: str, force: bool, env: dict[str, str], timeout_s: float | None) -> int:
    command = ["dvc", "repro", "--single-item", stage] + (["--force"] if force else [])
    # same process group as the flow: Ctrl-C and a kill of the run's group reach the stage too
    process = subprocess.Popen(command, env=env)
    try:
        code = process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill_tree(process.pid)
        process.wait()
        print(f"stage {stage} stopped after its timeout of {timeout_s:.0f} s")
        return TIMED_OUT
    if code != 0:
        event = read_events(Path(env[EVENTS_ENV])).get(stage, {})
        code = event.get("exit_code") or code
    return code


def dvc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["dvc", *args], env=with_venv_on_path(dict(os.environ)), capture_output=True, text=True)


def dvc_remote() -> str | None:
    """The default DVC remote, when the checkout has one (`dvc remote add -d`)."""
    from dvc.repo import Repo

    with Repo(".") as repo:
        return repo.config["core"].get("remote") or None


def sync_outputs(direction: str) -> str | None:
    """With a default remote: pull the cached outputs before the stages (a fresh pod or checkout then skips
    what is already done), push them after (so they outlive the pod). Returns an error message, or None."""
    if dvc_remote() is None:
        return None
    result = dvc(*(["pull", "--allow-missing"] if direction == "pull" else ["push"]))
    if result.returncode != 0:
        return f"dvc {direction} failed: {(result.stderr or result.stdout).strip()[-500:]}"
    return None


def commit_stage_outputs(stage: str) -> None:
    """Record in dvc.lock that a stage's outputs changed on purpose (the sign-off added to promotion.json),
    so the next run does not redo the stage."""
    result = dvc("commit", "--force", stage)
    if result.returncode != 0:
        raise RuntimeError(f"dvc commit {stage} failed: {(result.stderr or result.stdout).strip()[-500:]}")


def read_events(path: Path) -> dict[str, dict]:
    if not path.exists():
        return {}
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {e["stage"]: e for e in events}  # the last attempt of a stage wins


def stale_stages(graph: list[tuple[str, list[str]]], repo=None) -> set[str]:
    """The stages DVC would run: those whose deps, params, command or outputs changed (`dvc status`, asked once),
    and every stage downstream of one. The rest are skipped without starting a task or a process."""
    from dvc.repo import Repo

    try:
        with contextlib.nullcontext(repo) if repo is not None else Repo(".") as opened:
            changed = set(opened.status())
    except Exception as error:  # a status DVC cannot give: let `dvc repro` decide stage by stage, as before
        print(f"warning: dvc status failed ({error}); every stage goes through dvc repro")
        return {stage for stage, _ in graph}
    stale: set[str] = set()
    for stage, upstream in graph:  # dependency order: a stage's upstream stages are decided before it
        if stage in changed or stale.intersection(upstream):
            stale.add(stage)
    return stale


def plan() -> tuple[list[tuple[str, list[str]]], set[str]]:
    """The stage graph and the stages to run, after pulling what a default DVC remote already holds (a fresh pod
    or checkout then skips what is already done). The graph and the status share one DVC index."""
    from dvc.repo import Repo

    pulled = sync_outputs("pull")
    if pulled:  # not fatal: the stages recompute what could not be pulled
        print(f"warning: {pulled}")
    with Repo(".") as repo:
        graph = _stage_view(repo)[0]
        return graph, stale_stages(graph, repo)
