"""The human audit through a real Label Studio server on 127.0.0.1: `rlaif audit export --to label-studio` makes the
project and its tasks, a reviewer submits annotations through Label Studio's API, `rlaif audit import --from
label-studio` pulls and scores them. The figures must equal those of the same verdicts imported from a file.

Label Studio pins packages that clash with ours, so the test set-up installs it in a virtual environment of its own
(kept in ~/.cache/rlaif-tests between runs, made afresh on a clean machine)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from conftest import BIN, Service, free_port
from test_audit import audit_cli, inputs, write_verdicts  # noqa: F401  (inputs is a fixture)

pytestmark = pytest.mark.slow
VERSION = "1.23.2"
NO_TELEMETRY = {"COLLECT_ANALYTICS": "false", "LATEST_VERSION_CHECK": "false", "SENTRY_DSN": "",
                "FRONTEND_SENTRY_DSN": "", "DO_NOT_TRACK": "1"}


def label_studio_venv() -> Path:
    """Label Studio's own virtual environment, installed once per machine (uv where the venv has it)."""
    home = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rlaif-tests" / f"label-studio-{VERSION}"
    if (home / ".installed").exists():
        return home
    shutil.rmtree(home, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(home)], check=True)
    uv = shutil.which("uv", path=str(BIN))
    command = ([uv, "pip", "install", "-q", "--python", str(home / "bin" / "python")] if uv else
               [str(home / "bin" / "python"), "-m", "pip", "install", "-q"])
    subprocess.run([*command, f"label-studio=={VERSION}"], check=True, timeout=1200)
    (home / ".installed").write_text(VERSION)
    return home


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory):
    """A Label Studio server with one reviewer, whose legacy API token the CLI reads from the environment."""
    root = tmp_path_factory.mktemp("label-studio")
    venv = label_studio_venv()
    port, token = free_port(), secrets.token_hex(20)
    env = {**os.environ, **NO_TELEMETRY, "LABEL_STUDIO_BASE_DATA_DIR": str(root / "data")}
    server = Service("label studio", [str(venv / "bin" / "label-studio"), "start", "--no-browser",
                                      "--internal-host", "127.0.0.1", "--port", str(port), "--data-dir",
                                      str(root / "data"), "--username", "reviewer@example.com", "--password",
                                      secrets.token_hex(8), "--user-token", token, "--enable-legacy-api-token"],
                     env, root / "server.log", cwd=root)
    try:
        server.wait_for(f"http://127.0.0.1:{port}/health", timeout=600)  # its first start migrates a new database
        yield {"url": f"http://127.0.0.1:{port}", "token": token, "log": server.log_path}
    finally:
        server.stop()


def audit(cwd: Path, server: dict, *args: str, token: str | None = None) -> subprocess.CompletedProcess:
    """`rlaif audit ...` with the server's address and a token in the environment, as a team sets them."""
    return audit_cli(cwd, *args, env_extra={"LABEL_STUDIO_URL": server["url"],
                                            "LABEL_STUDIO_API_KEY": token or server["token"]})


def tasks(server: dict, project: int) -> list[dict]:
    answer = httpx.get(f"{server['url']}/api/tasks", params={"project": project, "page_size": 100},
                       headers={"Authorization": f"Token {server['token']}"}, timeout=30)
    answer.raise_for_status()
    return answer.json()["tasks"]


def annotate(server: dict, task_id: int, verdict: str | None, note: str = "") -> None:
    """What Label Studio's labeling page sends when a reviewer submits (verdict given) or skips (None) a task."""
    result = [] if verdict is None else [
        {"from_name": "verdict", "to_name": "prompt", "type": "choices", "value": {"choices": [verdict]}},
        {"from_name": "note", "to_name": "prompt", "type": "textarea", "value": {"text": [note]}}]
    answer = httpx.post(f"{server['url']}/api/tasks/{task_id}/annotations", json={
        "result": result, "was_cancelled": verdict is None}, headers={"Authorization": f"Token {server['token']}"},
        timeout=30)
    assert answer.status_code == 201, answer.text


def reviewer_verdict(i: int, ai_pick: str) -> str:
    """A reviewer who disagrees with the AI on every fourth row and calls every fourth a tie."""
    other = {"1": "2", "2": "1", "tie": "1"}[ai_pick]
    return other if i % 4 == 0 else "tie" if i % 4 == 1 else ai_pick


def test_audit_round_trip_through_label_studio_equals_the_file_import(label_studio, inputs, tmp_path: Path):
    out = tmp_path / "audit"
    exported = audit(tmp_path, label_studio, "export", "--labels", str(inputs["labels"]), "--prompts",
                     str(inputs["prompts"]), "--constitution", str(inputs["constitution"]), "--out", str(out),
                     "--n", "12", "--to", "label-studio")
    assert exported.returncode == 0, exported.stdout + exported.stderr
    project = json.loads((out / "label_studio.json").read_text())
    assert project["tasks"] == project["added"] == 12
    shown = tasks(label_studio, project["project_id"])
    sample = {row["audit_id"]: row for row in map(json.loads, (out / "audit_sample.jsonl").read_text().splitlines())}
    assert {t["data"]["audit_id"] for t in shown} == set(sample)
    for task in shown:  # what the reviewer sees: the shown order, and nothing of the AI's pick
        row = sample[task["data"]["audit_id"]]
        assert (task["data"]["answer_1"], task["data"]["answer_2"]) == (row["answer_1"], row["answer_2"])
        assert not {"ai_pick", "prob_a", "ai_confidence", "answer_1_is"} & set(task["data"])
    again = audit(tmp_path, label_studio, "export", "--labels", str(inputs["labels"]), "--prompts",
                  str(inputs["prompts"]), "--constitution", str(inputs["constitution"]), "--out", str(out),
                  "--n", "12", "--to", "label-studio", "--force")
    assert again.returncode == 0 and json.loads((out / "label_studio.json").read_text())["added"] == 0, again.stderr
    assert len(tasks(label_studio, project["project_id"])) == 12  # the same project, no task twice

    key = {row["audit_id"]: row for row in map(json.loads, (out / "audit_key.jsonl").read_text().splitlines())}
    by_task = {t["data"]["audit_id"]: t["id"] for t in shown}
    chosen = {audit_id: reviewer_verdict(i, key[audit_id]["ai_pick"]) for i, audit_id in enumerate(sorted(key))}
    last = sorted(key)[-1]
    for audit_id in sorted(key)[:-2]:
        annotate(label_studio, by_task[audit_id], chosen[audit_id], note=f"on {audit_id}")
    annotate(label_studio, by_task[sorted(key)[-2]], None)  # skipped
    unfinished = audit(tmp_path, label_studio, "import", "--from", "label-studio", "--key", str(out / "audit_key.jsonl"))
    message = " ".join(unfinished.stderr.split())
    assert unfinished.returncode == 2, unfinished.stdout + unfinished.stderr
    assert "2 of 12 tasks have no submitted verdict (1 not annotated, 1 skipped)" in message and last in message

    partial = audit(tmp_path, label_studio, "import", "--from", "label-studio", "--key", str(out / "audit_key.jsonl"),
                    "--partial", "--json", "--no-mlflow")
    assert partial.returncode == 0, partial.stderr
    assert json.loads(partial.stdout)["n_reviewed"] == 10 and json.loads(partial.stdout)["n_unreviewed"] == 2

    for audit_id in sorted(key)[-2:]:
        annotate(label_studio, by_task[audit_id], chosen[audit_id], note=f"on {audit_id}")
    pulled = audit(tmp_path, label_studio, "import", "--from", "label-studio", "--key", str(out / "audit_key.jsonl"),
                   "--json", "--out", str(tmp_path / "from-label-studio.json"))
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    from_server = json.loads((tmp_path / "from-label-studio.json").read_text())
    assert from_server["label_studio"]["submitted"] == 12 and from_server["label_studio"]["skipped"] == 0

    # the same verdicts, typed into the file a team without a server sends back
    write_verdicts(tmp_path / "verdicts.csv", [{**sample[a], "verdict": v, "note": f"on {a}"} for a, v in chosen.items()])
    from_file = audit(tmp_path, label_studio, "import", "--verdicts", str(tmp_path / "verdicts.csv"), "--key",
                      str(out / "audit_key.jsonl"), "--json", "--no-mlflow")
    assert from_file.returncode == 0, from_file.stderr
    expected = {k: v for k, v in json.loads(from_file.stdout).items() if k != "mlflow_run_id"}
    assert {k: v for k, v in from_server.items() if k not in ("mlflow_run_id", "label_studio")} == expected
    scored = [(v, key[a]["ai_pick"]) for a, v in chosen.items() if v != "tie" and key[a]["ai_pick"] != "tie"]
    assert from_server["agreement"] == pytest.approx(sum(h == ai for h, ai in scored) / len(scored))
    assert from_server["n"] == len(scored) and from_server["human_ties"] == list(chosen.values()).count("tie")

    # the token: only in the environment, never in what the commands printed or wrote
    token = label_studio["token"]
    for result in (exported, again, unfinished, partial, pulled):
        assert token not in result.stdout + result.stderr
    written = [p for p in tmp_path.rglob("*") if p.is_file() and token.encode() in p.read_bytes()]
    assert written == []


def test_a_wrong_token_is_refused_without_showing_it(label_studio, inputs, tmp_path: Path):
    wrong = secrets.token_hex(20)
    result = audit(tmp_path, label_studio, "export", "--labels", str(inputs["labels"]), "--prompts",
                   str(inputs["prompts"]), "--constitution", str(inputs["constitution"]), "--out",
                   str(tmp_path / "audit"), "--n", "4", "--to", "label-studio", token=wrong)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "refused the token in $LABEL_STUDIO_API_KEY" in result.stderr and wrong not in result.stdout + result.stderr
    assert not (tmp_path / "audit/label_studio.json").exists()  # no project recorded for a push that failed
    unset = audit_cli(tmp_path, "import", "--from", "label-studio", "--key", str(tmp_path / "audit/audit_key.jsonl"),
                      "--label-studio-url", label_studio["url"], "--label-studio-project", "1")
    assert unset.returncode == 2 and "LABEL_STUDIO_API_KEY" in unset.stderr, unset.stderr
