"""Import the Constitutional AI paper's published prompts as a Constitution.

Bai et al. 2022, "Constitutional AI: Harmlessness from AI Feedback", publish their prompts in the
repository anthropics/ConstitutionalHarmlessnessPaper, folder prompts/:

- `RLMadisonInstructions.json`, the RL-CAI comparison principles: a JSON list of strings, each one
  instruction wrapped in the paper's few-shot scaffolding, e.g.
  "\\nPlease choose the response that is the most helpful, honest, and harmless. Options:"
- `CritiqueRevisionInstructions.json`, the SL-CAI critique and revision requests: a JSON object
  keyed "harmful0", "harmful1", ..., each value
  {"prompt": ["\\n\\nCritiqueRequest: <critique request>\\n\\nCritique:"],
   "edit_request": "\\n\\nRevisionRequest: <revision request>\\n\\nRevision:"}

The scaffolding (leading newlines, "CritiqueRequest:"/"Critique:", "RevisionRequest:"/"Revision:",
a trailing "Options:") belongs to the paper's raw prompt layout, not to the principle; it is removed,
since the project's judge templates supply their own ("Critique request: ...\\nCritique:"). Files
that hold the bare request text import the same way.

Comparison principles get ids `cai_comparison_{i}` (0-based, in file order) and no worked examples:
the paper has none per principle. The LLM judges (transformers, openai) need none; the embedding
judge does, and refuses a constitution whose comparison principles have none, so add examples (or
merge the imported principles into a constitution that has them) before using it there.
Critique principles get the key as id; a key whose "prompt" list holds several critique requests
gives one principle per request, `{key}_{j}`, all sharing the key's revision request.

    rlaif constitution-import --comparisons RLMadisonInstructions.json \\
        --critiques CritiqueRevisionInstructions.json --name cai-paper --version 1.0.0 --out cai.yaml
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from rlaif.data.io import Constitution, describe_invalid, write_text
from rlaif.errors import InputError

SOURCE = "anthropics/ConstitutionalHarmlessnessPaper, prompts/"

_COMPARISON_TAIL = re.compile(r"\s*Options:\s*$")
_CRITIQUE_HEAD = re.compile(r"^\s*Critique\s*Request:\s*", re.IGNORECASE)
_CRITIQUE_TAIL = re.compile(r"\s*Critique:\s*$")
_REVISION_HEAD = re.compile(r"^\s*Revision\s*Request:\s*", re.IGNORECASE)
_REVISION_TAIL = re.compile(r"\s*Revision:\s*$")


def _strip(text: str, head: re.Pattern | None, tail: re.Pattern) -> str:
    text = text.strip()
    if head is not None:
        text = head.sub("", text, count=1)
    return tail.sub("", text, count=1).strip()


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    duplicated = sorted({k for k in keys if keys.count(k) > 1})
    if duplicated:
        raise ValueError(f"duplicate key {duplicated[0]!r}")
    return dict(pairs)


def _load_json(path: Path) -> Any:
    """Parse a JSON file; every way it can be unreadable is an InputError naming the file."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not UTF-8 text (byte {err.start})") from None
    if not text.strip():
        raise InputError(f"{path}: empty file (expected JSON)")
    try:
        return json.loads(text, object_pairs_hook=_reject_duplicates)
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON (line {err.lineno} column {err.colno}: {err.msg})") from None
    except ValueError as err:  # a duplicate key, from the hook
        raise InputError(f"{path}: not valid JSON for import ({err})") from None


def _request_text(path: Path, where: str, item: Any, head: re.Pattern | None, tail: re.Pattern, what: str) -> str:
    """One request string without the paper's scaffolding; an error naming the JSON path otherwise."""
    if not isinstance(item, str):
        raise InputError(f"{path}: {where}: expected a string, got {_type_name(item)}")
    text = _strip(item, head, tail)
    if not text:
        raise InputError(f"{path}: {where}: empty {what}")
    return text


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def read_comparisons(path: Path) -> list[tuple[str, str]]:
    """(id, text) for each comparison instruction of a paper-format JSON list."""
    data = _load_json(path)
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a JSON list of comparison instructions, got {_type_name(data)}")
    if not data:
        raise InputError(f"{path}: no comparison instructions (the list is empty)")
    principles = []
    for i, item in enumerate(data):
        text = _request_text(path, f"[{i}]", item, None, _COMPARISON_TAIL, "instruction")
        principles.append((f"cai_comparison_{i}", text))
    return principles


def read_critiques(path: Path) -> list[tuple[str, str, str]]:
    """(id, critique request, revision request) for each entry of a paper-format JSON object."""
    data = _load_json(path)
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object of critique entries keyed like 'harmful0', "
                         f"got {_type_name(data)}")
    if not data:
        raise InputError(f"{path}: no critique entries (the object is empty)")
    out = []
    for key, entry in data.items():
        if not key.strip():
            raise InputError(f"{path}: {key!r}: empty key")
        if not isinstance(entry, dict):
            raise InputError(f"{path}: {key}: expected an object with 'prompt' and 'edit_request', got {_type_name(entry)}")
        unknown = sorted(set(entry) - {"prompt", "edit_request"})
        if unknown:
            raise InputError(f"{path}: {key}.{unknown[0]}: unknown field (expected 'prompt' and 'edit_request')")
        for field in ("prompt", "edit_request"):
            if field not in entry:
                raise InputError(f"{path}: {key}.{field}: missing")
        requests = entry["prompt"]
        if not isinstance(requests, list):
            raise InputError(f"{path}: {key}.prompt: expected a list of strings, got {_type_name(requests)}")
        if not requests:
            raise InputError(f"{path}: {key}.prompt: empty list (expected at least one critique request)")
        revision = entry["edit_request"]
        if not isinstance(revision, str):
            raise InputError(f"{path}: {key}.edit_request: expected a string, got {_type_name(revision)}")
        revision = _strip(revision, _REVISION_HEAD, _REVISION_TAIL)
        if not revision:
            raise InputError(f"{path}: {key}.edit_request: empty revision request")
        for j, critique in enumerate(requests):
            critique = _request_text(path, f"{key}.prompt[{j}]", critique, _CRITIQUE_HEAD, _CRITIQUE_TAIL,
                                     "critique request")
            out.append((key if len(requests) == 1 else f"{key}_{j}", critique, revision))
    return out


def import_cai(comparisons: Path | None, critiques: Path | None, name: str, version: str) -> Constitution:
    """A Constitution from the paper's comparison list and/or critique-revision object.

    A constitution needs at least one comparison principle (the judge compares pairs), so a critiques
    file alone is an error.
    """
    if comparisons is None and critiques is None:
        raise InputError("import_cai: give a comparisons file, a critiques file, or both")
    principles: list[dict[str, Any]] = []
    sources = []
    if comparisons is not None:
        sources.append(Path(comparisons).name)
        principles += [{"id": pid, "text": text, "kind": "comparison"} for pid, text in read_comparisons(Path(comparisons))]
    if critiques is not None:
        sources.append(Path(critiques).name)
        principles += [{"id": pid, "text": critique, "kind": "critique_revision", "critique": critique,
                        "revision": revision} for pid, critique, revision in read_critiques(Path(critiques))]
    if not any(p["kind"] == "comparison" for p in principles):
        raise InputError(f"{critiques}: a constitution needs at least one comparison principle to judge pairs; "
                         "give a comparisons file too")
    description = (f"Imported from the Constitutional AI paper's prompt format ({', '.join(sources)}; "
                   f"{SOURCE}). Comparison principles carry no worked examples.")
    try:
        return Constitution.model_validate({"name": name, "version": version, "description": description,
                                            "principles": principles})
    except ValidationError as err:
        where = ", ".join(str(p) for p in (comparisons, critiques) if p is not None)
        raise InputError(f"{where}: {describe_invalid(err)}") from None


def constitution_yaml(constitution: Constitution) -> str:
    data = constitution.model_dump(mode="json", exclude_none=True)
    for p in data["principles"]:
        if not p.get("examples"):
            p.pop("examples", None)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=4096)


def write_constitution(constitution: Constitution, path: Path) -> Path:
    """YAML that rlaif.data.io.read_constitution reads back as an equal Constitution; written atomically."""
    return write_text(Path(path), constitution_yaml(constitution))
