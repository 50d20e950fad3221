"""`rlaif reproduce MODEL_URI`: rebuild a model version from its record alone and say, stage by stage, whether each
output has the recorded digest.

The record is what the stage runs logged: the git commit, each input's digest, the effective params
(params/run.yaml), the installed packages and the machine facts (rlaif/lifecycle/environment.py). The rebuild runs in a scratch
clone of this repository at that commit (plus the uncommitted code edits the stages ran on, which each stage run
records as a diff), with those params, every stage of the model's ancestry forced and started
cold (no warm server), its MLflow records kept in the scratch folder. Before anything runs, each source input in the
clone is checked against the digest the model was trained on, so an input the run read but the commit does not hold
(an uncommitted edit) is named with its stage at once.

Files whose bytes name the run rather than what it computed are not compared (VOLATILE, with the reason).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from rlaif.errors import InputError, RlaifError

# file or folder name inside a stage's output -> why its bytes differ from run to run
VOLATILE = {
    "registered.json": "names the MLflow run and registry version the model was given",
    "data_docs": "Great Expectations pages carry the time of the validation",
}
# machine facts whose difference changes float results (rlaif/lifecycle/environment.py)
MACHINE_KEYS = ("env.cpu", "env.cpu_flags", "env.torch_threads", "env.torch_blas", "env.torch_config_sha256",
                "env.python")


class ReproduceMismatch(RlaifError):
    """The rebuild differs from the record (an input, a package or an output)."""

    exit_code = 6


def stage_order(dvc_yaml: Path = Path("dvc.yaml")) -> list[str]:
    return list((yaml.safe_load(dvc_yaml.read_text(encoding="utf-8")) or {}).get("stages") or {})


def ancestry_nodes(tree: dict) -> dict[str, dict]:
    """stage -> its run's node in a lineage tree (the newest, as the tree holds one run per stage)."""
    found: dict[str, dict] = {}

    def walk(node: dict) -> None:
        found.setdefault(node["stage"], node)
        for entry in node.get("inputs", []):
            if "produced_by" in entry:
                walk(entry["produced_by"])

    walk(tree)
    return found


def recorded_outputs(run) -> dict[str, str]:
    """path -> md5 of each output the run tagged: a directory output's files and folders one by one (so that a
    volatile file leaves its siblings comparable), a file output whole."""
    tags = run.data.tags
    outputs: dict[str, str] = {}
    for key, value in tags.items():
        if not (key.startswith("output.") and key.endswith(".md5")):
            continue
        top, _, child = key[len("output."):-len(".md5")].partition("/")
        root = tags.get(f"output.{top}.path")
        if root and (child or not any(k.startswith(f"output.{top}/") for k in tags)):
            outputs[os.path.normpath(os.path.join(root, child) if child else root)] = value
    return dict(sorted(outputs.items()))


def volatile_reason(path: str) -> str | None:
    return next((why for name, why in VOLATILE.items() if name in Path(path).parts), None)


def package_changes(recorded: dict[str, str], installed: dict[str, str]) -> list[str]:
    from rlaif.lifecycle.environment import SELF

    names = sorted((set(recorded) | set(installed)) - {SELF})
    return [f"{n} {recorded.get(n, 'absent')} -> {installed.get(n, 'absent')}"
            for n in names if recorded.get(n) != installed.get(n)]


def machine_changes(params: dict[str, str]) -> list[str]:
    from rlaif.lifecycle.environment import environment_record

    now = environment_record()["params"]
    return [f"{k[len('env.'):]} {params[k]} -> {now.get(k)}" for k in MACHINE_KEYS if k in params and params[k] != now.get(k)]


def _artifact(client, run_id: str, path: str, into: Path) -> Path:
    try:
        return Path(client.download_artifacts(run_id, path, str(into)))
    except Exception as err:  # MlflowException: the run predates this record
        raise InputError(f"run {run_id} recorded no {path} (made before runs recorded it): "
                         f"{str(err).splitlines()[0]}") from None


def scratch_clone(commit: str, into: Path) -> Path:
    """A clone of this repository at `commit`, sharing its objects (no copy of the history)."""
    if commit in ("", "unknown"):
        raise InputError("the model's run recorded no git commit: it cannot be rebuilt from its record")
    subprocess.run(["git", "clone", "-q", "--shared", "--no-checkout", str(Path.cwd()), str(into)], check=True)
    done = subprocess.run(["git", "-C", str(into), "checkout", "-q", "--detach", commit], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise InputError(f"commit {commit} is not in this repository: {done.stderr.strip()}")
    return into


def apply_uncommitted(client, nodes: dict[str, dict], scratch: Path, record_dir: Path) -> str | None:
    """The uncommitted code edits the stages ran on (recorded with each run), applied to the scratch clone; None when
    they ran on the commit as it is. Stages that ran on different edits cannot be rebuilt as one tree. A stage that
    ran on the commit beside stages that ran on edits (DVC reused it: the edits do not touch its code) is rebuilt
    with the edits too, and the comparison of its outputs says whether that changed anything."""
    runs = {stage: client.get_run(node["run_id"]) for stage, node in nodes.items()}
    dirty = {stage: run for stage, run in runs.items() if run.data.tags.get("git.dirty") == "true"}
    if not dirty:
        return None
    digests = {run.data.tags.get("git.diff_sha256") for run in dirty.values()}
    if len(digests) > 1:
        states = ", ".join(f"{stage}: edits {run.data.tags.get('git.diff_sha256', '?')[:12]}"
                           for stage, run in dirty.items())
        raise ReproduceMismatch(f"the stages ran on different uncommitted code ({states}): no single tree rebuilds them")
    stage, run = next(iter(dirty.items()))
    patch = _artifact(client, run.info.run_id, "source/uncommitted.diff", record_dir)
    if hashlib.sha256(patch.read_bytes()).hexdigest() != run.data.tags.get("git.diff_sha256"):
        raise ReproduceMismatch(f"the uncommitted code recorded with {stage} does not have its recorded digest")
    done = subprocess.run(["git", "-C", str(scratch), "apply", "--binary", str(patch.resolve())],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ReproduceMismatch(f"the uncommitted code recorded with {stage} does not apply to its commit: "
                                f"{done.stderr.strip()[:300]}")
    return run.data.tags.get("git.dirty_files", "")


def check_inputs(nodes: dict[str, dict], order: list[str], scratch: Path, commit: str) -> None:
    """Every source input as the commit holds it against the digest the model was trained on; all that differ are
    named, first stage first."""
    from rlaif.lifecycle.digests import file_md5

    changed = []
    for stage in (s for s in order if s in nodes):
        for entry in nodes[stage]["inputs"]:
            if "source" not in entry or not entry.get("path"):
                continue
            held = scratch / entry["path"]
            now = file_md5(held) if held.exists() else "nothing"
            if now != entry["md5"]:
                changed.append(f"{stage}: input {entry['name']} ({entry['path']}): the model was trained on md5 "
                               f"{entry['md5']}, commit {commit[:12]} holds {now}")
    if changed:
        raise ReproduceMismatch("; ".join(changed) + ": a changed input (the run read bytes that were never committed)")


def rebuild(scratch: Path, target: str, recorded_params: Path) -> None:
    """The target's stages and everything upstream, forced and cold, in the scratch clone."""
    shutil.copy(recorded_params, scratch / "params" / "run.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_RUN", "MLFLOW_EXPERIMENT", "RLAIF_"))}
    # the clone's own code, not this checkout's editable install, runs the stages
    env.update({"MLFLOW_TRACKING_URI": f"sqlite:///{scratch / 'mlflow.db'}", "PYTHONPATH": str(scratch),
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"})
    # DVC's and the stages' output goes to stderr: stdout is the result's (one JSON object with --json)
    done = subprocess.run([str(Path(sys.executable).parent / "dvc"), "repro", "--force", target], cwd=scratch, env=env,
                          stdout=sys.stderr.fileno(), check=False)
    if done.returncode != 0:
        raise ReproduceMismatch(f"the rebuild of {target} failed in {scratch} (dvc repro exit {done.returncode})")


def compare(client, nodes: dict[str, dict], order: list[str], scratch: Path) -> list[dict]:
    """Per stage: each recorded output against the rebuilt file."""
    from rlaif.lifecycle.digests import file_md5

    report = []
    for stage in (s for s in order if s in nodes):
        rows = []
        for path, md5 in recorded_outputs(client.get_run(nodes[stage]["run_id"])).items():
            why = volatile_reason(path)
            rebuilt = scratch / path
            now = file_md5(rebuilt) if rebuilt.exists() else "missing"
            rows.append({"path": path, "recorded": md5, "rebuilt": now,
                         "status": "volatile" if why else ("match" if now == md5 else "DIFFERS"),
                         **({"why": why} if why else {})})
        report.append({"stage": stage, "run_id": nodes[stage]["run_id"], "files": rows,
                       "matches": all(r["status"] != "DIFFERS" for r in rows)})
    return report


def reproduce(uri: str, workdir: Path | None = None, keep: bool = False) -> dict:
    """Rebuild `uri` from its record; the result names each stage's outcome. Raises ReproduceMismatch naming the
    first stage that differs and why."""
    from mlflow import MlflowClient

    from rlaif.lifecycle.environment import installed_packages
    from rlaif.lifecycle.lineage import lineage
    from rlaif.lifecycle.tracking import tracking_uri

    traced = lineage(uri)
    client = MlflowClient(tracking_uri=tracking_uri())
    order, nodes = stage_order(), ancestry_nodes(traced["training"])
    training = client.get_run(traced["training"]["run_id"])
    commit = training.data.tags.get("mlflow.source.git.commit", "")
    scratch = Path(workdir or tempfile.mkdtemp(prefix="rlaif-reproduce-")).resolve()
    record_dir = scratch.parent / f"{scratch.name}-record"
    record_dir.mkdir(parents=True, exist_ok=True)
    recorded_params = _artifact(client, training.info.run_id, "params/run.yaml", record_dir)
    packages = json.loads(_artifact(client, training.info.run_id, "environment/packages.json", record_dir).read_text())
    result = {"model": traced["model"], "commit": commit, "scratch": str(scratch),
              "packages_changed": package_changes(packages, installed_packages()),
              "machine_changed": machine_changes(training.data.params), "stages": []}
    if scratch.exists() and any(scratch.iterdir()):
        raise InputError(f"{scratch}: not empty; name an empty or new folder with --workdir")
    scratch_clone(commit, scratch)
    result["uncommitted_code"] = apply_uncommitted(client, nodes, scratch, record_dir)
    check_inputs(nodes, order, scratch, commit)  # a changed input is named for any round, before anything runs
    start = (yaml.safe_load(recorded_params.read_text(encoding="utf-8")) or {}).get("bootstrap", {})
    if str(start.get("resolved_base_model") or "").startswith("models:/"):
        raise InputError(f"{uri}: its round started from {start['resolved_base_model']}; rebuilding a round that "
                         "starts from a registered model is not supported yet (rebuild that model's own round)")
    rebuild(scratch, traced["training"]["stage"], recorded_params)
    result["stages"] = compare(client, nodes, order, scratch)
    result["reproduced"] = all(s["matches"] for s in result["stages"])
    if result["reproduced"] and not keep:
        shutil.rmtree(scratch, ignore_errors=True)
    shutil.rmtree(record_dir, ignore_errors=True)
    return result


def first_difference(result: dict) -> str | None:
    """One line naming the first stage whose rebuilt output differs, and what changed since the record."""
    stage = next((s for s in result["stages"] if not s["matches"]), None)
    if stage is None:
        return None
    files = [r["path"] for r in stage["files"] if r["status"] == "DIFFERS"]
    why = ("packages changed: " + ", ".join(result["packages_changed"][:6]) if result["packages_changed"] else
           "machine changed: " + ", ".join(result["machine_changed"]) if result["machine_changed"] else
           "same packages and machine facts: a computation in this stage is not deterministic")
    return (f"{stage['stage']}: {len(files)} output(s) differ from the record ({', '.join(files[:4])}); {why}. "
            f"The rebuild is kept in {result['scratch']}")


def render(result: dict):
    from rich.table import Table

    edits = f" with the uncommitted edits it ran on ({result['uncommitted_code']})" if result.get("uncommitted_code") else ""
    table = Table(title=f"rebuild of {result['model']['name']} v{result['model']['version']} at "
                        f"{result['commit'][:12]}{edits}")
    for column in ("stage", "files compared", "match", "differ", "not compared (volatile)"):
        table.add_column(column)
    for stage in result["stages"]:
        count = {k: sum(r["status"] == k for r in stage["files"]) for k in ("match", "DIFFERS", "volatile")}
        table.add_row(stage["stage"], str(len(stage["files"])), str(count["match"]),
                      f"[bold red]{count['DIFFERS']}[/]" if count["DIFFERS"] else "0", str(count["volatile"]))
    return table
