"""Reading and writing the pipeline's data files.

Every input row is validated by a pydantic schema; a bad row is an InputError naming the file and
line. Outputs are written to a temporary file and renamed, so a crash never leaves a half-written
file behind.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rlaif.errors import InputError, RlaifError

Row = TypeVar("Row", bound=BaseModel)


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Prompt(Record):
    id: str = Field(min_length=1)
    prompt: str = Field(min_length=1)
    expected: Literal["help", "refuse"]
    category: str
    topic: str
    harm_category: str
    template: str
    language: str = "en"
    group: str | None = None


class SeedDialogue(Record):
    prompt_id: str
    prompt: str = Field(min_length=1)
    response: str = Field(min_length=1)
    behaviour: Literal["help", "refuse"]


class GoldPair(Record):
    id: str
    prompt: str = Field(min_length=1)
    response_a: str = Field(min_length=1)
    response_b: str = Field(min_length=1)
    human_preference: Literal["a", "b"]
    annotator: str
    note: str = ""


class WorkedExample(Record):
    prompt: str = Field(min_length=1)
    chosen: str = Field(min_length=1)
    rejected: str = Field(min_length=1)


class Principle(Record):
    id: str = Field(min_length=1)
    text: str = Field(min_length=1)
    kind: Literal["comparison", "critique_revision"] = "comparison"
    weight: float = Field(1.0, gt=0)
    opposes: str | None = Field(None, description="A principle that prefers the opposite kind of answer (harmless vs helpful).")
    examples: list[WorkedExample] = Field(default_factory=list)
    critique: str | None = Field(None, description="critique_revision: the critique request.")
    revision: str | None = Field(None, description="critique_revision: the revision request.")

    @model_validator(mode="after")
    def _kind_fields(self) -> "Principle":
        if self.kind == "critique_revision" and not (self.critique and self.revision):
            raise ValueError(f"principle {self.id!r}: kind critique_revision needs 'critique' and 'revision'")
        return self


class Constitution(Record):
    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    description: str = ""
    principles: list[Principle] = Field(min_length=1)

    def of_kind(self, kind: str) -> list[Principle]:
        return [p for p in self.principles if p.kind == kind]

    @field_validator("principles")
    @classmethod
    def _unique_ids(cls, principles: list[Principle]) -> list[Principle]:
        ids = [p.id for p in principles]
        duplicated = sorted({i for i in ids if ids.count(i) > 1})
        if duplicated:
            raise ValueError(f"duplicate principle ids: {duplicated}")
        if not any(p.kind == "comparison" for p in principles):
            raise ValueError("at least one principle of kind 'comparison' is needed to judge pairs")
        for p in principles:
            if p.opposes is not None and p.opposes not in ids:
                raise ValueError(f"principle {p.id!r}: opposes unknown principle {p.opposes!r}")
        return principles


def _describe(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"]) or "(row)"
        parts.append(f"field '{field}': {e['msg']}")
    return "; ".join(parts)


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line. Read as bytes and decoded line by line, so a bad byte is
    named by its line and its offset in the file (a text-mode reader only knows its offset in a decoder chunk)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.is_dir():
        raise InputError(f"{path}: is a folder; expected a JSON Lines file")
    offset = 0
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise InputError(f"{path}:{line_no}: not UTF-8 text (byte {offset + err.start} of the file, "
                                 f"column {err.start + 1} of the line)") from None
            offset += len(raw)
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise InputError(f"{path}:{line_no}: not valid JSON ({err.msg}, column {err.colno})") from None
            if not isinstance(row, dict):
                raise InputError(f"{path}:{line_no}: expected a JSON object")
            yield line_no, row


def read_rows(path: Path, schema: type[Row], unique_key: str | None = None) -> list[Row]:
    rows: list[Row] = []
    seen: dict[Any, int] = {}
    for line_no, raw in iter_jsonl(path):
        try:
            row = schema.model_validate(raw)
        except ValidationError as err:
            raise InputError(f"{path}:{line_no}: {_describe(err)}") from None
        if unique_key is not None:
            key = getattr(row, unique_key)
            if key in seen:
                raise InputError(f"{path}:{line_no}: duplicate {unique_key} {key!r} (first on line {seen[key]})")
            seen[key] = line_no
        rows.append(row)
    if not rows:
        raise InputError(f"{path}: no rows")
    return rows


def read_prompts(path: Path) -> list[Prompt]:
    return read_rows(path, Prompt, unique_key="id")


def read_text(path: Path, what: str, error: type[RlaifError] = InputError) -> str:
    """A text file's content, a leading byte-order mark (as spreadsheets write) left out. Every way the file can be
    unreadable is one `error` naming it: missing, a folder, a byte that is not UTF-8 (its line and file offset)."""
    path = Path(path)
    if not path.exists():
        raise error(f"{path}: file not found ({what})")
    if path.is_dir():
        raise error(f"{path}: is a folder; expected {what}")
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise error(f"{path}: not readable ({err.strerror})") from None
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise error(f"{path}:{line}: not UTF-8 text (byte {err.start} of the file)") from None


def read_yaml(path: Path, what: str, error: type[RlaifError] = InputError) -> Any:
    """A YAML file's content: `read_text`'s errors, and a syntax error named with its line and column."""
    text = read_text(path, f"{what}, a YAML file", error)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        where = f"{path}:{mark.line + 1}: column {mark.column + 1}: " if mark else f"{path}: "
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise error(f"{where}not valid YAML ({problem})") from None
    except RecursionError:
        raise error(f"{path}: nested too deeply to read ({what})") from None


def read_constitution(path: Path) -> Constitution:
    data = read_yaml(path, "a constitution")
    try:
        return Constitution.model_validate(data)
    except ValidationError as err:
        raise InputError(f"{path}: {_describe(err)}") from None


# Each judge template -> (the placeholders it is filled with, those it must use: without them the judge would
# not see what it judges). The prefixes are appended as they are; refusal_opening is a regular expression.
TEMPLATE_FIELDS: dict[str, tuple[set[str], set[str]]] = {
    "query": ({"prompt"}, {"prompt"}),
    "answer": ({"response"}, {"response"}),
    "dialogue": ({"prompt", "response"}, {"prompt", "response"}),
    "pairwise": ({"principle", "prompt", "response_a", "response_b"}, {"prompt", "response_a", "response_b"}),
    "pairwise_reasoning": ({"principle", "prompt", "response_a", "response_b"}, {"prompt", "response_a", "response_b"}),
    "pointwise": ({"principle", "prompt", "response"}, {"prompt", "response"}),
    "critique": ({"prompt", "response", "critique_request"}, {"response", "critique_request"}),
    "revision": ({"prompt", "response", "critique_request", "critique", "revision_request"},
                 {"response", "critique", "revision_request"}),
}
PLAIN_TEMPLATES = ("pairwise_answer_prefix", "reasoning_prefix", "verdict_after_reasoning", "pointwise_answer_prefix")
REGEX_TEMPLATES = ("refusal_opening",)


def read_templates(path: Path) -> dict[str, str]:
    """Judge prompt templates: a mapping name -> template string (data, not code). Every template the judges
    and critique_revise use is present, uses only the placeholders it is filled with and every one it needs,
    and refusal_opening compiles; an error names the template and its line."""
    import re
    import string

    data = read_yaml(path, "judge templates")
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise InputError(f"{path}: expected a mapping of template name -> text")
    known = [*TEMPLATE_FIELDS, *PLAIN_TEMPLATES, *REGEX_TEMPLATES]
    missing = [name for name in known if name not in data]
    if missing:
        raise InputError(f"{path}: template(s) missing: {', '.join(missing)}")
    unknown = [name for name in data if name not in known]
    if unknown:
        raise InputError(f"{path}: unknown template(s) {', '.join(unknown)}; known: {', '.join(known)}")
    lines = _key_lines(path)
    for name, (allowed, required) in TEMPLATE_FIELDS.items():
        where = f"{path}:{lines.get(name, '?')}: template {name!r}"
        try:
            used = {field for _, field, _, _ in string.Formatter().parse(data[name]) if field is not None}
        except ValueError as err:
            raise InputError(f"{where}: not a format string ({err}; write a literal brace as {{{{ or }}}})") from None
        if used - allowed:
            raise InputError(f"{where} uses {', '.join('{' + f + '}' for f in sorted(used - allowed))}; it may use "
                             f"{', '.join('{' + f + '}' for f in sorted(allowed))}")
        if required - used:
            raise InputError(f"{where} lacks {', '.join('{' + f + '}' for f in sorted(required - used))}")
    for name in REGEX_TEMPLATES:
        try:
            re.compile(data[name], re.IGNORECASE)
        except re.error as err:
            raise InputError(f"{path}:{lines.get(name, '?')}: template {name!r} is not a valid regular expression "
                             f"({err})") from None
    return data


def _key_lines(path: Path) -> dict[str, int]:
    """The line of each top-level key of a YAML mapping (the file already parsed once)."""
    node = yaml.compose(Path(path).read_text(encoding="utf-8"))
    return {key.value: key.start_mark.line + 1 for key, _ in getattr(node, "value", []) if hasattr(key, "value")}


def write_jsonl(path: Path, rows: Iterable[dict[str, Any] | BaseModel]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for row in rows:
            data = row.model_dump(mode="json") if isinstance(row, BaseModel) else row
            handle.write(json.dumps(data, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
    return path


def write_json(path: Path, data: Any) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def write_text(path: Path, text: str) -> Path:
    """Write through a temporary file and rename: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def refuse_to_clobber(path: Path, what: str, force: bool) -> None:
    """Stop before overwriting a file a person may still need, unless told --force; says what it would lose."""
    if Path(path).exists() and not force:
        raise InputError(f"{path} exists ({what}): not overwritten; pass --force to replace it")


def strict_json(data: Any, **kwargs) -> str:
    """JSON that strict parsers accept: NaN and infinities become null, and the paths where that happened are
    listed under "non_finite" (a figure that is undefined for these inputs, not a number)."""
    import math

    replaced: list[str] = []

    def clean(value: Any, where: str) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            replaced.append(where or "(top)")
            return None
        if isinstance(value, dict):
            return {k: clean(v, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return value

    cleaned = clean(data, "")
    if replaced and isinstance(cleaned, dict):
        cleaned["non_finite"] = replaced
    return json.dumps(cleaned, allow_nan=False, default=str, **kwargs)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [row for _, row in iter_jsonl(path)]
