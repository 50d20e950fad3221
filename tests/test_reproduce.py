"""Reproducibility: the lock's record, the machine facts, and what `rlaif reproduce` compares and names.

The end-to-end rebuild is the end-to-end loop's (tests/test_pipeline_e2e.py): `rlaif reproduce` rebuilds its first
version cold in a scratch clone from the record alone and every stage's outputs match the recorded digests (the run
forked its stages warm); a version trained on an uncommitted constitution edit is refused, the edit named with its
stage and file before anything is rebuilt.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from rlaif.lifecycle.environment import lock_drift, lock_record, packages_digest, read_lock
from rlaif.lifecycle.reproduce import ancestry_nodes, package_changes, volatile_reason


def test_a_lock_is_read_and_an_install_that_drifts_from_it_is_named(tmp_path: Path):
    lock = tmp_path / "test.txt"
    lock.write_text("torch==2.13.0+cpu \\\n    --hash=sha256:ab\nGreat_Expectations==1.24.1 \\\n    # via x\n")
    assert read_lock(lock) == {"torch": "2.13.0+cpu", "great-expectations": "1.24.1"}
    installed = {"torch": "2.13.0+cpu", "great-expectations": "1.25.0"}
    assert lock_drift(read_lock(lock), installed) == {"great-expectations": "locked 1.24.1, installed 1.25.0"}
    record = lock_record(installed, (lock,))
    assert record["lock_matches"] == "false" and "great-expectations" in record["lock_drift"]
    assert lock_record({**installed, "great-expectations": "1.24.1"}, (lock,))["lock_matches"] == "true"
    assert packages_digest(installed) != packages_digest({**installed, "torch": "2.14.0"})


def test_the_installed_packages_are_the_locked_ones():
    """The test environment is installed from requirements/test.txt (make test): a drift means the lock is not
    what the tests ran with."""
    from rlaif.lifecycle.environment import LOCKS, installed_packages

    root = Path(__file__).resolve().parents[1]
    pins = read_lock(root / LOCKS[1])
    assert len(pins) > 200 and "transformers" in pins
    assert lock_drift(pins, installed_packages()) == {}


def test_what_reproduce_compares_and_what_it_names():
    assert volatile_reason("artifacts/optimize_policy/registered.json")
    assert volatile_reason("reports/validate/data_docs")
    assert volatile_reason("artifacts/judge/labels.jsonl") is None
    assert package_changes({"torch": "2.13.0", "trl": "1.16.0"}, {"torch": "2.13.0", "trl": "1.17.0"}) == \
        ["trl 1.16.0 -> 1.17.0"]
    tree = {"stage": "optimize_policy", "inputs": [{"name": "preferences", "produced_by": {
        "stage": "validate", "inputs": [{"name": "labels", "produced_by": {"stage": "judge", "inputs": []}}]}}]}
    assert list(ancestry_nodes(tree)) == ["optimize_policy", "validate", "judge"]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


def test_uncommitted_code_is_recorded_and_replayed_on_the_commit(tmp_path: Path, monkeypatch):
    """A stage run on code edits that were never committed records them (files, diff, digest) through stage_run;
    reproduce applies that diff to a clone at the commit, byte for byte, and refuses stages that ran on different
    edits."""
    from mlflow import MlflowClient

    from rlaif.config import PipelineConfig
    from rlaif.lifecycle.reproduce import ReproduceMismatch, apply_uncommitted
    from rlaif.lifecycle.tracking import stage_run, uncommitted_code

    repo = tmp_path / "repo"
    (repo / "rlaif").mkdir(parents=True)
    (repo / "rlaif/stage.py").write_text("STEPS = 10\n")
    (repo / "rlaif/gone.py").write_text("OLD = 1\n")
    (repo / "rlaif/crlf.py").write_bytes(b"A = 1\r\n")
    (repo / "notes.txt").write_text("not code\n")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "-c", "user.email=a@b", "-c", "user.name=a", "-c", "diff.noprefix=true", "commit", "-qm", "code")
    monkeypatch.chdir(repo)
    assert uncommitted_code() == ([], b"")
    (repo / "rlaif/stage.py").write_text("STEPS = 20\n")
    (repo / "rlaif/gone.py").unlink()
    (repo / "rlaif/crlf.py").write_bytes(b"A = 2\r\n")
    (repo / "rlaif/new file é.py").write_bytes(b"NAME = '\xe9'\n")  # a space, a non-ASCII name, Latin-1 bytes
    (repo / "notes.txt").write_text("edited, but not code\n")
    files, diff = uncommitted_code()
    assert files == ["rlaif/crlf.py", "rlaif/gone.py", "rlaif/new file é.py", "rlaif/stage.py"], files

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    client.create_experiment("rlaif", artifact_location=str(tmp_path / "artifacts"))  # outside the checkout
    runs = {}
    for stage in ("judge", "validate"):
        with stage_run(stage, PipelineConfig()) as run:
            runs[stage] = {"run_id": run.run_id}
    tags = client.get_run(runs["judge"]["run_id"]).data.tags
    assert tags["git.dirty"] == "true" and tags["git.diff_sha256"] == hashlib.sha256(diff).hexdigest()

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    git(repo, "stash", "-u", "-q")  # the checkout back at its commit: what ran stays only in the record
    with stage_run("bootstrap", PipelineConfig()) as run:  # reused by DVC: it ran on the commit
        runs["bootstrap"] = {"run_id": run.run_id}
    assert client.get_run(runs["bootstrap"]["run_id"]).data.tags["git.dirty"] == "false"
    applied = apply_uncommitted(client, runs, clone, tmp_path / "record")
    assert applied == "rlaif/crlf.py, rlaif/gone.py, rlaif/new file é.py, rlaif/stage.py"
    git(repo, "stash", "pop", "-q")
    for name in files:
        assert (clone / name).exists() == (repo / name).exists(), name
        if (repo / name).exists():
            assert (clone / name).read_bytes() == (repo / name).read_bytes(), name
    assert (clone / "notes.txt").read_text() == "not code\n"

    (repo / "rlaif/stage.py").write_text("STEPS = 30\n")
    with stage_run("optimize_policy", PipelineConfig()) as run:
        runs["optimize_policy"] = {"run_id": run.run_id}
    with pytest.raises(ReproduceMismatch, match="different uncommitted code .*judge: edits .*optimize_policy: edits"):
        apply_uncommitted(client, runs, clone, tmp_path / "r2")
