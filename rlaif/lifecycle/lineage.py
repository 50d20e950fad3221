"""`rlaif lineage MODEL_URI`: from a registered model back to everything that made it.

Every stage run tags the md5 and path of each input (`input.NAME.md5`) and of each output (`output.NAME.md5`, and
of the files directly inside an output directory). An input's producer is the stage that dvc.yaml declares as
writing that path, and of that stage's runs the newest that wrote those bytes there; an input no stage declares is
a versioned source file (git or a .dvc file). Bytes alone do not name a producer: generate copies the training
prompts into its own output, and a match by content would make bootstrap's prompts generate's. Each recorded digest is checked against the data on disk now
(and against dvc.lock, where DVC recorded the same path), and every mismatch is reported.

The genealogy follows the versions' `rlaif.parent_version` tags from the model back to the built policy
(v3 <- v2 <- v1 <- bootstrap), with each ancestor's constitution, data digests, evaluation and sign-off.
"""

from __future__ import annotations

import datetime
import os
import re
from pathlib import Path

import yaml

from rlaif.errors import InputError

URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[\w-]+)|/(?P<version>\d+))$")
SHOWN_TAGS = ("constitution.name", "constitution.version", "judge.id", "mlflow.source.git.commit",
              "evaluation.judge", "evaluation.independent", "evaluation.independence_waiver",
              "judge_bias.judge", "judge_bias.passed", "judge_bias.checks")
SHOWN_PARAMS = ("judge.backend", "judge.model", "judge.mode", "judge.principle_mode", "judge.jury", "judge.base_url",
                "optimize_policy.algorithm", "optimize_policy.soft_labels", "train_reward.model",
                "train_reward.soft_labels", "generate.num_candidates", "generate.prefills", "generate.temperature",
                "evaluate.lexicon", "seed",
                "bootstrap.base_model")


class LineageMismatch(InputError):
    """A recorded digest no longer matches the stored data."""

    exit_code = 5


def resolve_version(client, uri: str):
    match = URI.match(uri.strip())
    if not match:
        raise InputError(f"model URI {uri!r}: expected models:/NAME@ALIAS or models:/NAME/VERSION")
    name = match["name"]
    try:
        if match["alias"]:
            return client.get_model_version_by_alias(name, match["alias"])
        return client.get_model_version(name, match["version"])
    except Exception as err:  # MlflowException: RESOURCE_DOES_NOT_EXIST and friends
        raise InputError(f"model URI {uri!r} does not exist in {client.tracking_uri}: "
                         f"{str(err).splitlines()[0]}") from None


def _stage_runs(client, experiment_id: str) -> list:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], max_results=1000, page_token=token, order_by=["start_time DESC"])
        runs += [r for r in page if "rlaif.stage" in r.data.tags]
        token = page.token
        if not token:
            return runs


def _norm(path: str) -> str:
    """A path as dvc.yaml writes it: relative to the project (the working directory) where it lies inside."""
    path = os.path.normpath(path)
    if os.path.isabs(path) and path.startswith(os.getcwd() + os.sep):
        path = os.path.relpath(path)
    return path


def _producers(runs: list) -> dict[tuple[str, str], object]:
    """(path, md5) -> the newest run that wrote those bytes at that path (runs come newest first); a directory
    output's files are indexed under the directory's path joined with their name."""
    index: dict[tuple[str, str], object] = {}
    for run in runs:
        tags = run.data.tags
        for key, value in tags.items():
            if not (key.startswith("output.") and key.endswith(".md5")):
                continue
            name = key[len("output."):-len(".md5")]
            top, _, child = name.partition("/")
            root = tags.get(f"output.{top}.path")
            if root:
                index.setdefault((_norm(os.path.join(root, child) if child else root), value), run)
    return index


def declared_outputs(dvc_yaml: Path = Path("dvc.yaml")) -> dict[str, str]:
    """output path -> the stage that dvc.yaml declares as writing it."""
    if not dvc_yaml.exists():
        return {}
    stages = (yaml.safe_load(dvc_yaml.read_text(encoding="utf-8")) or {}).get("stages") or {}
    return {_norm(next(iter(out)) if isinstance(out, dict) else out): name
            for name, stage in stages.items() for out in stage.get("outs") or []}


def declaring_stage(path: str, declared: dict[str, str]) -> str | None:
    """The stage whose declared output is `path` or a folder holding it."""
    path = _norm(path)
    for out, stage in declared.items():
        if path == out or path.startswith(out + os.sep):
            return stage
    return None


def source_of(path: str) -> str:
    """How a file that no stage writes is versioned: by git, by a .dvc file beside it, by the installed package that
    ships it, or not at all."""
    import subprocess

    if Path(f"{path}.dvc").exists():
        return "dvc"
    if "site-packages" in Path(path).parts:  # a model an installed package ships: its version is the package's
        return "installed package"
    tracked = subprocess.run(["git", "ls-files", "--error-unmatch", path], capture_output=True, check=False)
    return "git" if tracked.returncode == 0 else "unversioned"


def _dvc_hashes(lock: Path = Path("dvc.lock")) -> dict[str, str]:
    """path -> md5 as DVC recorded it, for every dep and out of every stage."""
    if not lock.exists():
        return {}
    data = yaml.safe_load(lock.read_text(encoding="utf-8")) or {}
    hashes = {}
    for stage in (data.get("stages") or {}).values():
        for entry in (stage.get("deps") or []) + (stage.get("outs") or []):
            if "md5" in entry:
                hashes[entry["path"]] = entry["md5"]
    return hashes


def _check(path: str | None, recorded: str, dvc: dict[str, str]) -> dict:
    """The stored data now against the digest the run recorded; DVC's own digest where it hashes the same way
    (files: a plain md5; directories differ in scheme and are compared through our digest only)."""
    from rlaif.lifecycle.digests import file_md5

    check: dict[str, object] = {"path": path, "md5": recorded, "current_md5": None, "status": "missing"}
    if path and Path(path).exists():
        check["current_md5"] = file_md5(Path(path))
        check["status"] = "ok" if check["current_md5"] == recorded else "MISMATCH"
    if path in dvc:
        check["dvc_md5"] = dvc[path]
        if not recorded.endswith(".dir"):
            check["dvc_matches"] = dvc[path] == recorded
    return check


def _node(run, producers: dict, dvc: dict, seen: set, declared: dict[str, str] | None = None) -> dict:
    tags, params = run.data.tags, run.data.params
    node = {"stage": tags["rlaif.stage"], "run_id": run.info.run_id, "run_name": run.info.run_name,
            "status": run.info.status, "started": _date(run.info.start_time),
            "tags": {k: tags[k] for k in SHOWN_TAGS if k in tags},
            "params": {k: v for k, v in sorted(params.items()) if k.startswith(SHOWN_PARAMS)},
            "metrics": {k: round(v, 4) for k, v in sorted(run.data.metrics.items()) if "/" not in k and "." not in k},
            "inputs": [], "outputs": _outputs(run, dvc)}
    if run.info.run_id in seen:
        return {**node, "inputs": [], "repeated": True}
    seen.add(run.info.run_id)
    declared = declared_outputs() if declared is None else declared
    for key in sorted(k for k in tags if k.startswith("input.") and k.endswith(".md5")):
        name = key[len("input."):-len(".md5")]
        path = tags.get(f"input.{name}.path")
        entry = {"name": name, **_check(path, tags[key], dvc)}
        stage = declaring_stage(path, declared) if path else None
        if stage is None:
            entry["source"] = source_of(path) if path else "unknown"
        else:
            entry["declared_by"] = stage
            producer = producers.get((_norm(path), tags[key]))
            if producer is not None and producer.data.tags.get("rlaif.stage") == stage:
                entry["produced_by"] = _node(producer, producers, dvc, seen, declared)
            else:
                entry["producer"] = f"no run of {stage} on record wrote these bytes to {path}"
        node["inputs"].append(entry)
    return node


def _date(epoch_ms: int | None) -> str | None:
    """MLflow's epoch milliseconds as a date a reviewer reads (UTC)."""
    if epoch_ms is None:
        return None
    return datetime.datetime.fromtimestamp(epoch_ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _outputs(run, dvc: dict) -> list[dict]:
    """What the run wrote (top-level outputs only), checked against the data on disk."""
    tags = run.data.tags
    return [{"name": k[len("output."):-len(".md5")], **_check(tags.get(k[:-len(".md5")] + ".path"), v, dvc)}
            for k, v in sorted(tags.items()) if k.startswith("output.") and k.endswith(".md5") and "/" not in k]


def _evaluations(runs: list, model_digests: set[str]) -> list[dict]:
    """The evaluate runs that judged this model (their candidate digest is one of the model's digests)."""
    found = []
    for run in runs:
        tags = run.data.tags
        if tags.get("rlaif.stage") == "evaluate" and tags.get("input.candidate.md5") in model_digests:
            found.append({"run_id": run.info.run_id, "started": _date(run.info.start_time),
                          "evaluation_judge": tags.get("evaluation.judge"),
                          "independent": tags.get("evaluation.independent"),
                          "independence_waiver": tags.get("evaluation.independence_waiver"),
                          "report": tags.get("output.evaluate.path"),
                          "metrics": {k: round(v, 4) for k, v in run.data.metrics.items()
                                      if k in ("win_rate", "promoted", "candidate/correct_rate",
                                               "candidate/harmless_rate", "delta/correct_rate")}})
    return found


def lineage(uri: str) -> dict:
    from mlflow import MlflowClient

    from rlaif.lifecycle.tracking import quiet_telemetry, tracking_uri

    quiet_telemetry()
    client = MlflowClient(tracking_uri=tracking_uri())
    version = resolve_version(client, uri)
    run = client.get_run(version.run_id)
    if "rlaif.stage" not in run.data.tags:
        raise InputError(f"model URI {uri!r}: its run {version.run_id} is not a pipeline stage run")
    runs = _stage_runs(client, run.info.experiment_id)
    dvc = _dvc_hashes()
    tree = _node(run, _producers(runs), dvc, set())
    model_digests = {v for k, v in run.data.tags.items() if k.startswith("output.") and k.endswith(".md5")}
    result = {"model": {"uri": uri, "name": version.name, "version": str(version.version),
                        "aliases": list(getattr(version, "aliases", []) or []), "run_id": version.run_id,
                        "tags": dict(version.tags or {})},
              "training": tree, "evaluations": _evaluations(runs, model_digests)}
    result["mismatches"] = _mismatches(result)
    result["ancestors"] = _ancestry(client, version, runs, dvc)
    return result


def _ancestry(client, version, runs: list, dvc: dict) -> list[dict]:
    """The model and each version it descends from, newest first, ending at the policy the first round built."""
    chain, seen = [], set()
    producers = _producers(runs)
    while version is not None and version.version not in seen:
        seen.add(version.version)
        tags = dict(version.tags or {})
        try:
            tree = _node(client.get_run(version.run_id), producers, dvc, set())
        except Exception:  # the training run was deleted
            tree = {"stage": "?", "tags": {}, "params": {}, "inputs": [], "outputs": []}
        evaluation = {}
        if tags.get("promotion.evaluate_run_id"):
            metrics = client.get_run(tags["promotion.evaluate_run_id"]).data.metrics
            evaluation = {k: round(v, 4) for k, v in metrics.items()
                          if k in ("win_rate", "candidate/correct_rate", "candidate/unsafe_compliance_rate",
                                   "candidate/needless_refusal_rate", "candidate/incoherent_rate")}
        chain.append({"version": str(version.version), "round": tags.get("rlaif.round"),
                      "parent": tags.get("rlaif.parent"), "decision": tags.get("promotion.decision"),
                      "approval": {k[len("approval."):]: v for k, v in tags.items() if k.startswith("approval.")},
                      "constitution": _found(tree, "tags", ("constitution.name", "constitution.version")),
                      "data": _data_digests(tree), "evaluation": evaluation})
        parent = tags.get("rlaif.parent_version")
        version = client.get_model_version(version.name, parent) if parent and parent != "none" else None
    if chain and chain[-1]["parent"]:
        chain.append({"version": None, "round": "0", "parent": None, "start": chain[-1]["parent"]})
    return chain


def preference_sources(client, version) -> list[dict]:
    """The validate run whose preferences trained each version of the genealogy, newest first: for the version and
    every `rlaif.parent_version` back to the built policy, found through the recorded digests as `lineage` finds
    them ({"version", "round", "run_id"}; run_id None where no validate run is on record)."""
    sources, seen = [], set()
    runs = None
    while version is not None and version.version not in seen:
        seen.add(version.version)
        run = client.get_run(version.run_id)
        runs = runs if runs is not None else _stage_runs(client, run.info.experiment_id)
        tree = _node(run, _producers(runs), {}, set())
        validate = _first_stage(tree, "validate")
        sources.append({"version": str(version.version), "round": (version.tags or {}).get("rlaif.round"),
                        "run_id": validate["run_id"] if validate else None})
        parent = (version.tags or {}).get("rlaif.parent_version")
        version = client.get_model_version(version.name, parent) if parent and parent != "none" else None
    return sources


def _first_stage(node: dict, stage: str) -> dict | None:
    if node["stage"] == stage:
        return node
    for entry in node.get("inputs", []):
        found = _first_stage(entry["produced_by"], stage) if "produced_by" in entry else None
        if found:
            return found
    return None


def _found(node: dict, where: str, keys: tuple[str, ...]) -> dict:
    """The first values of `keys` in `where` (tags or params) anywhere in a lineage tree."""
    found = {k: node[where][k] for k in keys if k in node.get(where, {})}
    for entry in node.get("inputs", []):
        if "produced_by" in entry:
            found = {**_found(entry["produced_by"], where, keys), **found}
    return found


def _data_digests(node: dict) -> dict:
    """The digests of the source data the tree read (prompts, drops, seed dialogues, constitution, gold)."""
    digests: dict = {}
    for entry in node.get("inputs", []):
        if "produced_by" in entry:
            digests = {**_data_digests(entry["produced_by"]), **digests}
        elif entry["name"] in ("prompts", "drops", "seed_dialogues", "constitution", "gold"):
            digests.setdefault(entry["name"], entry["md5"][:12])
    return digests


def _mismatches(result: dict) -> list[dict]:
    found = []

    def walk(node):
        for entry in node.get("outputs", []):
            if entry["status"] == "MISMATCH":
                found.append({"stage": node["stage"], "name": entry["name"], "path": entry["path"],
                              "recorded": entry["md5"], "current": entry["current_md5"], "dvc": entry.get("dvc_md5")})
        for entry in node["inputs"]:
            if entry["status"] == "MISMATCH" or entry.get("dvc_matches") is False:
                found.append({"stage": node["stage"], "name": entry["name"], "path": entry["path"],
                              "recorded": entry["md5"], "current": entry["current_md5"], "dvc": entry.get("dvc_md5")})
            if "produced_by" in entry:
                walk(entry["produced_by"])

    walk(result["training"])
    return found


def render(result: dict):
    """A rich Tree for the terminal."""
    from rich.tree import Tree

    model = result["model"]
    root = Tree(f"[bold]{model['name']} v{model['version']}[/] aliases={model['aliases']} run={model['run_id'][:8]}")
    for key, value in model["tags"].items():
        root.add(f"[dim]{key}[/] = {value}")
    _render_node(root, result["training"])
    evaluations = root.add("[bold]evaluations[/]")
    for e in result["evaluations"] or [{"run_id": "none"}]:
        evaluations.add(", ".join(f"{k}={v}" for k, v in e.items()))
    ancestry = root.add("[bold]genealogy[/] " + " <- ".join(
        f"v{a['version']}" if a["version"] else str(a["start"]) for a in result.get("ancestors", [])))
    for a in result.get("ancestors", []):
        if a["version"]:
            approval = a["approval"].get("status")
            ancestry.add(f"v{a['version']} round {a['round']} from {a['parent']}: {a['decision']}"
                         + (f" ({approval} by {a['approval'].get('reviewer')}, {a['approval'].get('at')}: "
                            f"{a['approval'].get('reason')})" if approval else "")
                         + f"; constitution {a['constitution']}; data {a['data']}; evaluation {a['evaluation']}")
    mismatches = result["mismatches"]
    root.add("[green]all recorded digests match the stored data[/]" if not mismatches else
             f"[bold red]{len(mismatches)} digest mismatch(es)[/]: " + "; ".join(
                 f"{m['stage']}:{m.get('name')} {m.get('path')}" for m in mismatches))
    return root


def _render_node(parent, node: dict) -> None:
    facts = ", ".join(f"{k}={v}" for k, v in {**node["tags"], **node["params"]}.items())
    branch = parent.add(f"[bold cyan]{node['stage']}[/] run={node['run_id'][:8]} {facts}")
    for entry in node.get("outputs", []):
        colour = {"ok": "green", "MISMATCH": "bold red", "missing": "yellow"}[entry["status"]]
        branch.add(f"[dim]wrote[/] {entry['name']}: {entry['path']} md5={entry['md5'][:12]} [{colour}]{entry['status']}[/]")
    for entry in node["inputs"]:
        colour = {"ok": "green", "MISMATCH": "bold red", "missing": "yellow"}[entry["status"]]
        line = f"{entry['name']}: {entry['path']} md5={entry['md5'][:12]} [{colour}]{entry['status']}[/]"
        if "dvc_md5" in entry:
            line += f" dvc={entry['dvc_md5'][:12]}"
        if "source" in entry:
            line += f" [dim]source file ({entry['source']})[/]"
        elif "producer" in entry:
            line += f" [yellow]{entry['producer']}[/]"
        child = branch.add(line)
        if "produced_by" in entry:
            _render_node(child, entry["produced_by"])
