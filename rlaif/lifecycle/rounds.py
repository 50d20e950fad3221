"""Recurring retraining: where a round starts, and which prompts it trains on.

A round starts from a policy named by `bootstrap.base_model`: nothing (build the tiny policy), a hub id or a
path, or a registered version (`models:/rlaif-policy@champion`, `models:/rlaif-policy/3`). A registry URI is
resolved to one concrete version before any stage runs and written to params/run.yaml
(`bootstrap.resolved_base_model`), where DVC sees it: a moved champion reruns bootstrap and everything after it,
an unmoved one skips. Each registered policy records its parent and its round, so rounds form a genealogy.

A round's reward model also learns from the preferences that made the policy it starts from: bootstrap writes
the validated preferences of the starting version and each of its ancestors (logged by their validate runs) to
artifacts/bootstrap/replay_preferences.jsonl, and train_reward trains on them beside the round's own
(`train_reward.replay`). Each new round's pairs come from a better policy, so on their own they under-represent the
mistakes earlier rounds fixed, and a reward model trained on them alone can unlearn them (as iterated RLHF pipelines
accumulate preference data across rounds).

New training prompts arrive as drops: files in data/prompts/drops/ (same schema as data/prompts/train.jsonl),
added beside the old ones, never edited into them. A round trains on the newest drop plus a seeded replay sample
of the earlier prompts (so the policy keeps what it learned); with no drops, on all of train.jsonl.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from rlaif.data.io import Prompt, read_prompts, read_source_prompts
from rlaif.errors import ConfigError, InputError
from rlaif.lifecycle.lineage import URI as REGISTRY_URI

BUILD = "build"  # bootstrap.fallback: build the tiny policy
START_FILE = "start.json"  # next to the starting policy: where it came from, its round


@dataclass(frozen=True)
class Start:
    """The concrete start of a round: a registered version, a hub id or path, or None (build)."""

    source: str | None
    name: str | None = None
    version: str | None = None
    note: str = ""


def is_registry_uri(value: str | None) -> TypeGuard[str]:
    return value is not None and value.startswith("models:/")


def resolve_start(base_model: str | None, fallback: str | None, client_factory=None) -> Start:
    """`bootstrap.base_model` made concrete. A registry alias with no version (or a registered model that does not
    exist yet: the first round) takes `bootstrap.fallback`; a pinned version that does not exist is an error."""
    if not is_registry_uri(base_model):
        return Start(base_model)
    match = REGISTRY_URI.match(base_model.strip())
    if not match:
        raise ConfigError(f"bootstrap.base_model {base_model!r}: expected models:/NAME@ALIAS or models:/NAME/VERSION")
    client = (client_factory or _client)()
    name = match["name"]
    if match["version"]:
        try:
            client.get_model_version(name, match["version"])
        except Exception as err:  # MlflowException RESOURCE_DOES_NOT_EXIST
            raise ConfigError(f"bootstrap.base_model {base_model!r}: no such model version in "
                              f"{client.tracking_uri} ({_first_line(err)})") from None
        return Start(f"models:/{name}/{match['version']}", name, match["version"])
    try:
        version = str(client.get_model_version_by_alias(name, match["alias"]).version)
    except Exception as err:
        if fallback is None:
            raise ConfigError(f"bootstrap.base_model {base_model!r}: alias {match['alias']!r} holds no version in "
                              f"{client.tracking_uri} ({_first_line(err)}), and bootstrap.fallback is null") from None
        note = f"{base_model} holds no version yet: fallback {fallback}"
        return Start(None, note=note) if fallback == BUILD else Start(fallback, note=note)
    return Start(f"models:/{name}/{version}", name, version)


def _client():
    from mlflow import MlflowClient

    from rlaif.lifecycle.tracking import tracking_uri

    uri = tracking_uri()
    if _is_missing_sqlite_file(uri):
        return _EmptyStore(uri)
    return MlflowClient(tracking_uri=uri)


def _is_missing_sqlite_file(uri: str) -> bool:
    return uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists()


class _EmptyStore:
    """A SQLite tracking store that does not exist yet holds no model. MLflow would create the file (and its
    schema) just to answer that, and resolving the start must write nothing: `rlaif check` is read-only."""

    def __init__(self, uri: str):
        self.tracking_uri = uri

    def get_model_version(self, name: str, version: str):
        raise LookupError(f"RESOURCE_DOES_NOT_EXIST: {self.tracking_uri} does not exist yet")

    def get_model_version_by_alias(self, name: str, alias: str):
        raise LookupError(f"RESOURCE_DOES_NOT_EXIST: {self.tracking_uri} does not exist yet")


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or ["unknown error"])[0][:200]


def parent_round(client, name: str, version: str) -> int:
    """The round that produced a registered version (1 for a version registered before rounds were recorded)."""
    tags = client.get_model_version(name, version).tags or {}
    return int(tags.get("rlaif.round", 1))


def write_start(policy_dir: Path, start: Start, round_: int) -> Path:
    """start.json beside the starting policy: what optimize_policy tags as the parent, evaluate names the baseline."""
    from rlaif.data.records import StartRecord, write_record

    record = StartRecord(source=start.source or BUILD, name=start.name, version=start.version, round=round_,
                         parent=start.source or "bootstrap (built)")
    return write_record(Path(policy_dir).parent / START_FILE, record)


def read_start(policy_dir: Path):
    """The start record of a starting policy (a policy built before rounds existed: round 1, built)."""
    from rlaif.data.records import read_start as read_start_file

    return read_start_file(Path(policy_dir).parent / START_FILE)


REPLAY_FILE = "replay_preferences.jsonl"  # beside the starting policy
PREFERENCES_ARTIFACT = "preferences/preferences.jsonl"  # in each validate run


def write_replay_preferences(out_path: Path, name: str | None, version: str | None, client=None) -> dict:
    """The preferences of the registered version `name`/`version` and its ancestors, each row tagged with the
    version it trained (`replayed_from`), written atomically to out_path (empty when the round starts from no
    registered version). Returns a summary: pairs per version, and the versions with no preferences on record."""
    import tempfile

    from rlaif.data.records import read_preferences, write_records

    rows: list = []
    summary: dict[str, Any] = {"pairs": 0, "versions": {}, "missing": []}
    if name and version:
        import mlflow

        from rlaif.lifecycle.lineage import preference_sources

        client = client or _client()
        for source in preference_sources(client, client.get_model_version(name, version)):
            if source["run_id"] is None:
                summary["missing"].append(source["version"])
                continue
            with tempfile.TemporaryDirectory() as scratch:
                try:
                    local = mlflow.artifacts.download_artifacts(run_id=source["run_id"], dst_path=scratch,
                                                                artifact_path=PREFERENCES_ARTIFACT,
                                                                tracking_uri=client.tracking_uri)
                except Exception:  # a validate run from before preferences were logged
                    summary["missing"].append(source["version"])
                    continue
                found = read_preferences(Path(local))
            rows += [row.model_copy(update={"replayed_from": f"{name}/{source['version']}"}) for row in found]
            summary["versions"][source["version"]] = len(found)
    summary["pairs"] = len(rows)
    write_records(Path(out_path), rows)
    return summary


# ---------------------------------------------------------------------------------------------------------------------
# prompt drops


def drop_files(drops_dir: Path | None) -> list[Path]:
    """The drops in name order (name them by date, e.g. 2026-12-07.jsonl: the last one is the newest)."""
    if drops_dir is None or not Path(drops_dir).is_dir():
        return []
    return sorted(Path(drops_dir).glob("*.jsonl"))


def read_all_prompts(base: Path, drops_dir: Path | None, held_out: Path | None = None) -> dict[Path, list[Prompt]]:
    """Every prompt file, checked: each with read_source_prompts' rules (no text twice in a file), ids unique across
    files, and no drop prompt from a held-out evaluation template (that would leak the evaluation into training)."""
    files = {Path(base): read_source_prompts(base)}
    for path in drop_files(drops_dir):
        files[path] = read_source_prompts(path)
    held_templates = {p.template for p in read_prompts(held_out)} if held_out else set()
    seen: dict[str, Path] = {}
    for path, rows in files.items():
        for line, row in enumerate(rows, 1):
            if row.id in seen:
                raise InputError(f"{path}:{line}: prompt id {row.id!r} is already used in {seen[row.id]}")
            seen[row.id] = path
            if path != Path(base) and row.template in held_templates:
                raise InputError(f"{path}:{line}: template {row.template!r} is a held-out evaluation template "
                                 f"({held_out}); drops must not train on what the evaluation measures")
    return files


def round_prompts(base: Path, drops_dir: Path | None, replay: float, seed: int) -> tuple[list[Prompt], dict]:
    """The newest drop plus round(replay x its size) earlier prompts sampled with `seed`; all of `base` without drops.
    Returns the prompts (new first) and a summary of where they came from."""
    files = read_all_prompts(base, drops_dir)
    paths = list(files)
    if len(paths) == 1:
        rows = files[paths[0]]
        return rows, {"newest_drop": None, "new": 0, "replayed": 0, "base": len(rows), "files": [str(paths[0])]}
    newest, earlier = paths[-1], [row for path in paths[:-1] for row in files[path]]
    new = files[newest]
    count = min(len(earlier), round(replay * len(new)))
    replayed = random.Random(seed).sample(earlier, count)
    return new + replayed, {"newest_drop": str(newest), "new": len(new), "replayed": count, "base": 0,
                            "files": [str(p) for p in paths]}
