"""MLflow tracking: one parent run per pipeline run, one nested run per stage.

The flow opens the parent run and hands its id to the stage processes through RLAIF_PARENT_RUN_ID;
a stage run alone (`rlaif stage judge`, `dvc repro judge`) gets a run of its own. The tracking URI
is MLFLOW_TRACKING_URI when set, else a SQLite file in the project.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from rlaif.lifecycle.digests import file_md5

PARENT_RUN_ENV = "RLAIF_PARENT_RUN_ID"
EVENTS_ENV = "RLAIF_EVENTS_FILE"  # the flow learns which stages really ran from this file
RUN_PARAMS = Path("params/run.yaml")  # rlaif/config/params.py writes it; read here without importing the config schema
MAX_PARAM_CHARS = 250  # the smallest limit MLflow servers have enforced; longer values go to an artifact

TELEMETRY_OFF = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DVC_NO_ANALYTICS": "1",
    "GX_ANALYTICS_ENABLED": "false",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}


def quiet_telemetry() -> None:
    for key, value in TELEMETRY_OFF.items():
        os.environ.setdefault(key, value)


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path('mlflow.db').resolve()}"


def setup(experiment: str):
    quiet_telemetry()
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    mlflow.set_experiment(experiment)
    return mlflow


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
    except (subprocess.SubprocessError, FileNotFoundError):
        return "unknown"


# What decides a stage's behaviour besides its data and params: a run on edits to these that were never committed
# cannot be rebuilt from its commit alone, so the edits are recorded with it
CODE_PATHS = ("rlaif", "tasks", "flows", "dvc.yaml", "pyproject.toml", "requirements")


# git's own output, whatever the user's configuration: no colour, no external or textconv diff, a/ b/ prefixes,
# paths unquoted and NUL-separated, so that the diff applies on any clone
GIT_PLAIN = ("-c", "core.quotepath=off", "-c", "diff.noprefix=false", "-c", "diff.mnemonicPrefix=false",
             "-c", "diff.relative=false")
DIFF_FLAGS = ("--binary", "--no-color", "--no-ext-diff", "--no-textconv", "--src-prefix=a/", "--dst-prefix=b/")


def uncommitted_code() -> tuple[list[str], bytes] | None:
    """The code files that differ from HEAD (edited, deleted, or new and not ignored) and their diff as bytes, which
    `git apply` replays on a clone at HEAD's commit; None where git cannot say (no checkout, no git)."""
    def git(*args: str, ok: tuple[int, ...] = (0,)) -> bytes:
        done = subprocess.run(["git", *GIT_PLAIN, *args], capture_output=True, timeout=60, check=False)
        if done.returncode not in ok:
            raise subprocess.SubprocessError(done.stderr.decode(errors="replace"))
        return done.stdout

    def names(raw: bytes) -> list[str]:
        return [name.decode(errors="surrogateescape") for name in raw.split(b"\0") if name]

    try:
        git("rev-parse", "--verify", "HEAD")
        edited = names(git("diff", "--name-only", "-z", "HEAD", "--", *CODE_PATHS))
        new = names(git("ls-files", "-z", "--others", "--exclude-standard", "--", *CODE_PATHS))
        diff = git("diff", *DIFF_FLAGS, "HEAD", "--", *CODE_PATHS)
        for path in new:  # exit 1: --no-index found the difference it was asked for
            diff += git("diff", "--no-index", *DIFF_FLAGS, "--", "/dev/null", path, ok=(0, 1))
    except (subprocess.SubprocessError, OSError):
        return None
    return sorted(edited + new), diff


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def log_params(params: dict[str, Any]) -> None:
    """Log flattened params; a value over MLflow's limit is cut and kept whole in params/full.json."""
    import mlflow

    flat = flatten(params)
    too_long = {k: v for k, v in flat.items() if len(str(v)) > MAX_PARAM_CHARS}
    mlflow.log_params({k: (str(v)[: MAX_PARAM_CHARS - 3] + "..." if k in too_long else v) for k, v in flat.items()})
    if too_long:
        mlflow.log_dict(too_long, "params/full.json")


def log_dataset(path: Path, name: str, context: str) -> None:
    """Log a JSONL file as a run input; MLflow computes the dataset digest, we add the file md5."""
    import mlflow
    import pandas as pd

    from rlaif.data.io import read_jsonl

    frame = pd.DataFrame(read_jsonl(path))  # a malformed line is an InputError naming it, before the stage reads
    dataset = mlflow.data.from_pandas(frame, source=str(path), name=name)
    mlflow.log_input(dataset, context=context)


_failure_recorded = False  # this process already told the flow how its stage failed


def failure_recorded() -> bool:
    return _failure_recorded


def record_event(stage: str, status: str, run_id: str | None = None, seconds: float = 0.0,
                 metrics: dict[str, float] | None = None, exit_code: int = 0, error: str | None = None) -> None:
    """Tell the flow (through RLAIF_EVENTS_FILE) that a stage really ran, or how it failed (`error`: the message,
    naming the file and line where the input was bad)."""
    global _failure_recorded
    _failure_recorded = _failure_recorded or status == "failed"
    events = os.environ.get(EVENTS_ENV)
    if not events:
        return
    line = {"stage": stage, "status": status, "run_id": run_id, "seconds": round(seconds, 1),
            "metrics": metrics or {}, "exit_code": exit_code, "error": error}
    with open(events, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")


class StageRun:
    """What a stage logs through while it runs; collects headline metrics for the flow's summary."""

    def __init__(self, stage: str, run_id: str):
        self.stage = stage
        self.run_id = run_id
        self.headline: dict[str, float] = {}

    def metrics(self, values: Mapping[str, float | None], step: int | None = None, headline: bool = True) -> None:
        import mlflow

        clean = {k: float(v) for k, v in values.items() if v is not None}
        mlflow.log_metrics(clean, step=step)
        if headline:
            self.headline.update(clean)

    def artifact(self, path: Path, artifact_path: str | None = None) -> None:
        import mlflow

        path = Path(path)
        if path.is_dir():
            mlflow.log_artifacts(str(path), artifact_path=artifact_path)
        elif path.exists():
            mlflow.log_artifact(str(path), artifact_path=artifact_path)


class QuietStageRun(StageRun):
    """What a worker process of multi-process training gets: logs nothing."""

    def metrics(self, values: Mapping[str, float | None], step: int | None = None, headline: bool = True) -> None:
        pass

    def artifact(self, path: Path, artifact_path: str | None = None) -> None:
        pass


@contextlib.contextmanager
def stage_run(stage: str, cfg, inputs: dict[str, Path] | None = None, datasets: dict[str, Path] | None = None,
              outputs: dict[str, Path] | None = None) -> Iterator[StageRun]:
    """A nested MLflow run for one stage: params, input and output digests, git commit; the outcome goes to the
    events file. Output digests are what `rlaif lineage` follows from a consumer's input back to its producer."""
    from rlaif.training.launch import is_main_process

    if not is_main_process():  # a data-parallel worker: the main process does the logging
        yield QuietStageRun(stage, "")
        return
    mlflow = setup(cfg.experiment)
    parent = os.environ.get(PARENT_RUN_ENV)
    started = time.time()
    code = uncommitted_code()
    dirty, diff = code or ([], b"")
    tags = {"rlaif.stage": stage, "mlflow.source.git.commit": git_commit(),
            "git.dirty": "unknown" if code is None else str(bool(dirty)).lower()}
    if dirty:
        tags.update({"git.dirty_files": ", ".join(dirty)[:4000], "git.diff_sha256": hashlib.sha256(diff).hexdigest()})
    with mlflow.start_run(run_name=stage, nested=bool(parent), parent_run_id=parent or None, tags=tags) as run:
        if dirty:  # what `rlaif reproduce` applies on top of the commit
            log_bytes(diff, "source/uncommitted.diff")
        settings = cfg.section(stage)
        log_params({"seed": cfg.seed, **({stage: settings.model_dump(mode="json")} if settings is not None else {})})
        log_environment()
        if RUN_PARAMS.exists():  # the effective params this stage read: what `rlaif reproduce` writes back
            mlflow.log_artifact(str(RUN_PARAMS), "params")
        for name, path in (inputs or {}).items():
            if Path(path).exists():
                mlflow.set_tag(f"input.{name}.md5", file_md5(Path(path)))
                mlflow.set_tag(f"input.{name}.path", str(path))
        for name, path in (datasets or {}).items():
            log_dataset(Path(path), name, context=stage)
        handle = StageRun(stage, run.info.run_id)
        try:
            yield handle
        except BaseException as error:
            record_event(stage, "failed", run.info.run_id, time.time() - started, handle.headline,
                         getattr(error, "exit_code", 1), one_line(error))
            raise
        tag_outputs(outputs or {})
        record_event(stage, "ran", run.info.run_id, time.time() - started, handle.headline)


def log_bytes(data: bytes, artifact_path: str) -> None:
    """Bytes as an MLflow artifact, unchanged (log_text would need them decoded)."""
    import mlflow

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / Path(artifact_path).name
        path.write_bytes(data)
        mlflow.log_artifact(str(path), str(Path(artifact_path).parent))


def log_environment() -> None:
    """The packages and machine facts the run ran on (rlaif/lifecycle/environment.py): parameters, and the whole package list
    as environment/packages.json, which `rlaif reproduce` compares."""
    import mlflow

    from rlaif.lifecycle.environment import environment_record

    record = environment_record()
    mlflow.log_params(record["params"])
    mlflow.log_dict(record["packages"], "environment/packages.json")


def one_line(error: BaseException) -> str:
    """An error as the flow shows it in the stage's task log: a project error's own message (it names the file and
    line), anything else with its type."""
    from rlaif.errors import RlaifError

    text = str(error) if isinstance(error, RlaifError) else f"{type(error).__name__}: {error}"
    return " ".join(text.split())[:500]


def tag_outputs(outputs: dict[str, Path]) -> None:
    """Tag each output's md5 and, for a directory, each file directly in it: a consumer may read either."""
    import mlflow

    tags = {}
    for name, path in outputs.items():
        path = Path(path)
        if not path.exists():
            continue
        tags[f"output.{name}.md5"] = file_md5(path)
        tags[f"output.{name}.path"] = str(path)
        if path.is_dir():
            for child in sorted(c for c in path.iterdir() if c.is_file() or c.is_dir()):
                tags[f"output.{name}/{child.name}.md5"] = file_md5(child)
    mlflow.set_tags(tags)
