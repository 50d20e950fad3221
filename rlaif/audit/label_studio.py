"""The human audit in Label Studio: the audit sample as a project that reviewers label in their browser, and their
submitted annotations pulled back as verdicts that `rlaif.audit.review` scores like a reviewed file.

Talks to Label Studio's REST API (projects, import, export) with httpx. Its SDK (label-studio-sdk 2.1) pins
numpy below 2.3 and pulls in opencv and nltk, which would change the pipeline's own environment for five calls.

The token comes from the environment only (LABEL_STUDIO_API_KEY, the name Label Studio's SDK reads) and goes in a
request header, never into a file, a log line or an error message. A legacy token is sent as `Token <key>`; a
personal access token (a JWT) is first exchanged for an access token, as Label Studio documents.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from rlaif.data.io import read_jsonl, write_json, write_jsonl
from rlaif.errors import InputError

TOKEN_ENV = "LABEL_STUDIO_API_KEY"
URL_ENV = "LABEL_STUDIO_URL"
PROJECT_FILE = "label_studio.json"  # beside the audit key: which project holds this export's tasks
VERDICTS_FILE = "label_studio_verdicts.jsonl"  # the pulled verdicts, as scored (and logged to MLflow)
TASK_FIELDS = ("audit_id", "slice", "principle", "principle_text", "prompt", "answer_1", "answer_2")
PAGE = 100


def labeling_interface() -> str:
    """The project's labeling config: principle, prompt, the two answers in the shown order, verdict and note."""
    return resources.files("rlaif").joinpath("templates/label_studio_audit.xml").read_text(encoding="utf-8")


@dataclass
class Connection:
    url: str
    headers: dict[str, str]

    def call(self, method: str, path: str, **kwargs):
        import httpx

        try:
            response = httpx.request(method, self.url + path, headers=self.headers, timeout=60, **kwargs)
        except httpx.HTTPError as err:
            raise InputError(f"Label Studio at {self.url}: {type(err).__name__}: {err}") from None
        if response.status_code in (401, 403):
            raise InputError(f"Label Studio at {self.url} refused the token in ${TOKEN_ENV} "
                             f"({response.status_code} on {path}): check it, or make a new one under Account & Settings")
        if response.status_code >= 400:
            raise InputError(f"Label Studio at {self.url}: {method} {path} answered {response.status_code}: "
                             f"{response.text[:300]}")
        return response.json() if response.content else None


def connect(url: str | None = None) -> Connection:
    """A connection to the server at `url` (or $LABEL_STUDIO_URL) with the token in $LABEL_STUDIO_API_KEY."""
    url = (url or os.environ.get(URL_ENV) or "").rstrip("/")
    if not url:
        raise InputError(f"no Label Studio address: pass --label-studio-url or set ${URL_ENV}")
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise InputError(f"no Label Studio token: set ${TOKEN_ENV} (Account & Settings in Label Studio); "
                         "it is read from the environment only, so it stays out of shell history and logs")
    if token.count(".") == 2:  # a personal access token: a refresh token, exchanged for a short-lived access token
        answer = Connection(url, {}).call("POST", "/api/token/refresh", json={"refresh": token})
        return Connection(url, {"Authorization": f"Bearer {answer['access']}"})
    return Connection(url, {"Authorization": f"Token {token}"})


# ---------------------------------------------------------------- export


def _project_id(conn: Connection, title: str) -> int | None:
    found = conn.call("GET", "/api/projects", params={"title": title, "page_size": PAGE})
    rows = found["results"] if isinstance(found, dict) else found
    return next((row["id"] for row in rows if row["title"] == title), None)


def _task_pages(conn: Connection, project: int):
    page = 1
    while True:
        answer = conn.call("GET", "/api/tasks", params={"project": project, "page": page, "page_size": PAGE,
                                                         "fields": "all"})
        tasks = answer["tasks"] if isinstance(answer, dict) else answer
        yield from tasks
        if len(tasks) < PAGE:
            return
        page += 1


def push_sample(out: Path, url: str | None, title: str) -> dict:
    """Create (or update) the Label Studio project `title` with the audit sample in `out`: the labeling interface
    is set, and the sample's rows that the project does not hold yet are added as tasks (an export rerun with the
    same seed adds none). Writes `out/label_studio.json` and returns it."""
    samples = read_jsonl(Path(out) / "audit_sample.jsonl")
    conn = connect(url)
    settings = {"title": title, "label_config": labeling_interface(),
                "description": "Which answer follows the principle better? The order of the two answers is random.",
                "show_skip_button": True, "maximum_annotations": 1}
    project = _project_id(conn, title)
    if project is None:
        project = conn.call("POST", "/api/projects", json=settings)["id"]
    else:
        conn.call("PATCH", f"/api/projects/{project}", json=settings)
    present = {task["data"].get("audit_id") for task in _task_pages(conn, project)}
    new = [{"data": {field: row[field] for field in TASK_FIELDS}} for row in samples if row["audit_id"] not in present]
    if new:
        conn.call("POST", f"/api/projects/{project}/import", json=new)
    record = {"url": conn.url, "project_id": project, "title": title, "tasks": len(present) + len(new),
              "added": len(new), "project_url": f"{conn.url}/projects/{project}/data"}
    write_json(Path(out) / PROJECT_FILE, record)
    return record


# ---------------------------------------------------------------- import


def _read_record(path: Path) -> dict:
    import json

    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not the JSON that `rlaif audit export --to label-studio` writes ({err})") from None


def _verdict(annotation: dict) -> tuple[str | None, str]:
    choice, note = None, ""
    for item in annotation.get("result") or []:
        if item.get("from_name") == "verdict" and item.get("value", {}).get("choices"):
            choice = item["value"]["choices"][0]
        elif item.get("from_name") == "note":
            note = " ".join(item.get("value", {}).get("text") or []).strip()
    return choice, note


def pull_verdicts(key_path: Path, url: str | None, project: int | None, partial: bool) -> tuple[Path, dict]:
    """The project's submitted annotations as verdict rows (audit_id, verdict, note) written beside the key, ready
    for `rlaif.audit.review.read_verdicts`. A task that no reviewer has submitted (or that was skipped) is missing: the
    pull fails naming how many, unless `partial` (then the report counts them as unreviewed). Where a task has
    several submitted annotations, the last one updated counts. Returns the verdicts file and a summary."""
    key_path = Path(key_path)
    record_path = key_path.parent / PROJECT_FILE
    record = _read_record(record_path)
    project = project or record.get("project_id")
    if project is None:
        raise InputError(f"{record_path}: not found, and no --label-studio-project given: which project holds "
                         "this key's tasks? (`rlaif audit export --to label-studio` writes it)")
    conn = connect(url or record.get("url"))
    rows: list = []
    missing: list = []
    skipped: list = []
    several = 0
    for task in _task_pages(conn, int(project)):
        audit_id = task["data"].get("audit_id")
        done = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
        if not done:
            (skipped if task.get("annotations") else missing).append(audit_id)
            continue
        several += len(done) > 1
        latest = max(done, key=lambda a: a.get("updated_at") or "")
        verdict, note = _verdict(latest)
        rows.append({"audit_id": audit_id, "verdict": verdict, "note": note, "annotation_id": latest.get("id"),
                     "task_id": task["id"], "updated_at": latest.get("updated_at")})
    summary = {"project_id": int(project), "url": conn.url, "tasks": len(rows) + len(missing) + len(skipped),
               "submitted": len(rows), "missing": len(missing), "skipped": len(skipped), "several_annotations": several}
    if (missing or skipped) and not partial:
        ids = sorted(missing + skipped)
        listed = ", ".join(ids[:10]) + (f", and {len(ids) - 10} more" if len(ids) > 10 else "")
        raise InputError(f"Label Studio project {project} at {conn.url}: {len(ids)} of {summary['tasks']} tasks have "
                         f"no submitted verdict ({len(missing)} not annotated, {len(skipped)} skipped): {listed}. "
                         f"Finish them, or pass --partial to score the {len(rows)} submitted")
    if not rows:
        raise InputError(f"Label Studio project {project} at {conn.url}: no submitted verdicts yet")
    path = write_jsonl(key_path.parent / VERDICTS_FILE, rows)
    return path, summary
