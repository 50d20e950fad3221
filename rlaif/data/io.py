"""Reading and writing the pipeline's data files.

Every input row is validated by a pydantic schema; a bad row is an InputError naming the file and
line. Outputs are written to a temporary file and renamed, so a crash never leaves a half-written
file behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rlaif.errors import InputError, RlaifError

Row = TypeVar("Row", bound=BaseModel)


# ---------------------------------------------------------------------------------------------------------------------
# What a text field must be to mean something (docs/inputs.md lists every rule, with the test that covers it)

MAX_PROMPT_CHARS = 8_000  # a request; past this it is a pasted document, longer than a policy's context
MAX_ANSWER_CHARS = 16_000  # an answer, a principle, an example: room for a long one, not for a dump
MAX_NAME_CHARS = 200  # ids and slice names (category, topic, template, ...): keys, not prose
# Characters no person types into a prompt: C0/C1 controls (NUL, escape; tab and line breaks are text), the
# replacement character (the text was decoded wrongly before it reached us), and bidirectional overrides, which
# make a text display other than it reads (the "trojan source" trick).
BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


# the same set as one character class (Unicode's Cc category is exactly U+0000-U+001F and U+007F-U+009F): every
# prompt and answer of every input is checked, and a regular expression does it in C
STRAY = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd" + "".join(sorted(BIDI_CONTROLS)) + "]")


def _stray_character(text: str) -> str | None:
    found = STRAY.search(text)
    return found.group() if found else None


def text_problem(text: str, max_chars: int) -> str | None:
    """Why a text that parsed means nothing, or None: too long to be what the field says, a character no person
    types, or no letter or digit at all (whitespace or punctuation only: nothing for a model to read)."""
    if len(text) > max_chars:
        return f"{len(text):,} characters, over the limit of {max_chars:,}"
    stray = _stray_character(text)
    if stray is not None:
        return f"contains the control character U+{ord(stray):04X}"
    if not any(ch.isalnum() for ch in text):
        return "has no letter or digit (only whitespace or punctuation)"
    return None


def name_problem(text: str) -> str | None:
    """Why an id or a slice name means nothing: it is a key people match on, so one short line, no padding."""
    if not text.strip():
        return "is blank"
    if text != text.strip():
        return f"has spaces around it ({text!r}): {text.strip()!r} and it would be two keys"
    if len(text) > MAX_NAME_CHARS:
        return f"{len(text):,} characters, over the limit of {MAX_NAME_CHARS} for a name"
    if "\n" in text or _stray_character(text) is not None:
        return "contains a line break or control character"
    return None


def _checked(problem) -> AfterValidator:
    def check(value: str) -> str:
        found = problem(value)
        if found:
            raise ValueError(found)
        return value
    return AfterValidator(check)


PromptText = Annotated[str, Field(min_length=1), _checked(lambda t: text_problem(t, MAX_PROMPT_CHARS))]
AnswerText = Annotated[str, Field(min_length=1), _checked(lambda t: text_problem(t, MAX_ANSWER_CHARS))]
Name = Annotated[str, Field(min_length=1), _checked(name_problem)]
# a language tag as BCP 47 writes it (en, es, pt-BR, zh-Hant): slices and per-language figures group by it
LanguageTag = Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]


def same_text(a: str, b: str) -> bool:
    """Equal once case and runs of whitespace are ignored: what a reader would call the same text."""
    return normalised(a) == normalised(b)


def normalised(text: str) -> str:
    return " ".join(text.split()).casefold()


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Prompt(Record):
    id: Name
    prompt: PromptText
    expected: Literal["help", "refuse"]
    category: Name
    topic: Name
    harm_category: Name
    template: Name
    language: LanguageTag = "en"
    group: Name | None = None

    @model_validator(mode="after")
    def _expected_matches_harm(self) -> "Prompt":
        # harm_category "none" says there is nothing to refuse; any other says what harm helping would do. The
        # evaluator scores a refusal by `expected`: a row whose two fields disagree would score one of them wrong.
        if self.expected == "refuse" and self.harm_category == "none":
            raise ValueError("expected 'refuse' but harm_category 'none': a request without harm is not refused")
        if self.expected == "help" and self.harm_category != "none":
            raise ValueError(f"expected 'help' but harm_category {self.harm_category!r}: a harmful request is refused")
        return self


class SeedDialogue(Record):
    prompt_id: Name
    prompt: PromptText
    response: AnswerText
    behaviour: Literal["help", "refuse"]

    @model_validator(mode="after")
    def _answers(self) -> "SeedDialogue":
        # an echo teaches the policy to repeat the request, which is neither behaviour
        if same_text(self.prompt, self.response):
            raise ValueError("the response repeats the prompt")
        return self


class GoldPair(Record):
    id: Name
    prompt: PromptText
    response_a: AnswerText
    response_b: AnswerText
    human_preference: Literal["a", "b"]
    annotator: Name
    note: str = ""

    @model_validator(mode="after")
    def _two_answers(self) -> "GoldPair":
        # a person cannot have preferred one of two identical answers: the judge's agreement on it is noise
        if same_text(self.response_a, self.response_b):
            raise ValueError("response_a and response_b are the same text: no preference is possible")
        return self


class WorkedExample(Record):
    prompt: PromptText
    chosen: AnswerText
    rejected: AnswerText


class Principle(Record):
    id: Name
    text: AnswerText
    kind: Literal["comparison", "critique_revision"] = "comparison"
    weight: float = Field(1.0, gt=0, allow_inf_nan=False)
    opposes: str | None = Field(None, description="A principle that prefers the opposite kind of answer (harmless vs helpful).")
    examples: list[WorkedExample] = Field(default_factory=list)
    critique: str | None = Field(None, description="critique_revision: the critique request.")
    revision: str | None = Field(None, description="critique_revision: the revision request.")

    @model_validator(mode="after")
    def _kind_fields(self) -> "Principle":
        if self.kind == "critique_revision" and not (self.critique and self.revision):
            raise ValueError(f"principle {self.id!r}: kind critique_revision needs 'critique' and 'revision'")
        # fields of the other kind are never read: a principle that has them was likely given the wrong kind
        if self.kind == "comparison" and (self.critique or self.revision):
            raise ValueError(f"principle {self.id!r}: 'critique' and 'revision' are read only for kind "
                             "critique_revision; this principle is a comparison")
        if self.kind == "critique_revision" and (self.examples or self.opposes):
            raise ValueError(f"principle {self.id!r}: 'examples' and 'opposes' are read only for kind comparison")
        for field in ("critique", "revision"):
            problem = text_problem(getattr(self, field) or "x", MAX_ANSWER_CHARS)
            if problem:
                raise ValueError(f"principle {self.id!r}: {field} {problem}")
        if self.opposes == self.id:
            raise ValueError(f"principle {self.id!r} opposes itself")
        for n, example in enumerate(self.examples, 1):
            # the judge learns the principle from the difference between chosen and rejected: none, nothing learnt
            if same_text(example.chosen, example.rejected):
                raise ValueError(f"principle {self.id!r}: example {n}: chosen and rejected are the same text")
        return self


class Constitution(Record):
    name: Name
    version: Name
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
        _check_opposition({p.id: p for p in principles})
        _check_example_prompts(principles)
        return principles


def _check_opposition(by_id: dict[str, Principle]) -> None:
    """An opposition is one help-vs-refuse axis seen from both ends (the embedding judge builds it from both
    principles' examples): the other end must be a comparison principle, and may only oppose this one back."""
    for p in by_id.values():
        if p.opposes is None:
            continue
        other = by_id[p.opposes]
        if other.kind != "comparison":
            raise ValueError(f"principle {p.id!r}: opposes {other.id!r}, a {other.kind} principle; only comparison "
                             "principles have a side to oppose")
        if other.opposes not in (None, p.id):
            raise ValueError(f"principle {p.id!r} opposes {other.id!r}, which opposes {other.opposes!r}: one "
                             "principle cannot be the other end of two axes")


def _check_example_prompts(principles: list[Principle]) -> None:
    """The same worked-example prompt under two principles, the chosen answer of one being the rejected answer of
    the other: the constitution contradicts itself on that prompt."""
    seen: dict[tuple[str, str, str], str] = {}
    for p in principles:
        for example in p.examples:
            key = (normalised(example.prompt), normalised(example.chosen), normalised(example.rejected))
            swapped = (key[0], key[2], key[1])
            if swapped in seen:
                raise ValueError(f"principle {p.id!r}: the example {example.prompt[:60]!r} prefers the answer that "
                                 f"principle {seen[swapped]!r} rejects for the same prompt")
            seen[key] = p.id


def describe_invalid(err: ValidationError) -> str:
    """The fields a pydantic error names and what is wrong with each, in one line (a check across fields: its message)."""
    parts = []
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"])
        message = e["msg"].removeprefix("Value error, ")
        parts.append(f"field '{field}': {message}" if field else message)  # a check across the row's fields
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


def read_rows(path: Path, schema: type[Row], unique_key: str | None = None, *, what: str | None = None,
              allow_empty: bool = False) -> list[Row]:
    """Every row of a JSON Lines file as `schema`; the first bad row stops with its file, line and fields (and,
    given `what`, the kind of row it should have been)."""
    rows: list[Row] = []
    seen: dict[Any, int] = {}
    kind = f"not a {what} row: " if what else ""
    for line_no, raw in iter_jsonl(path):
        try:
            row = schema.model_validate(raw)
        except ValidationError as err:
            raise InputError(f"{path}:{line_no}: {kind}{describe_invalid(err)}") from None
        if unique_key is not None:
            key = getattr(row, unique_key)
            if key in seen:
                raise InputError(f"{path}:{line_no}: duplicate {unique_key} {key!r} (first on line {seen[key]})")
            seen[key] = line_no
        rows.append(row)
    if not rows and not allow_empty:
        raise InputError(f"{path}: no rows")
    return rows


def read_prompts(path: Path) -> list[Prompt]:
    return read_rows(path, Prompt, unique_key="id")


def read_source_prompts(path: Path) -> list[Prompt]:
    """A prompt file a person wrote (train, eval, a drop): read_prompts' rules, and no text twice. A repeated
    prompt weighs twice in training and counts twice in the evaluation; with another `expected` or `category` it
    contradicts itself. (Not for generate's prompts.jsonl, where a replayed prompt may repeat a drop's.)"""
    rows = read_prompts(path)
    first: dict[str, tuple[int, Prompt]] = {}
    for line, row in zip(row_lines(path), rows):
        key = normalised(row.prompt)
        if key in first:
            earlier_line, earlier = first[key]
            raise InputError(f"{path}:{line}: prompt {row.id!r} has the text of {earlier.id!r} (line {earlier_line})"
                             f"{contradiction(row, earlier)}")
        first[key] = (line, row)
    return rows


def contradiction(row: Prompt, other: Prompt) -> str:
    """', and contradicts it: ...' when two prompts of the same text disagree on what they are; else ''."""
    differ = [f"{f} {getattr(row, f)!r} vs {getattr(other, f)!r}" for f in ("expected", "category")
              if getattr(row, f) != getattr(other, f)]
    return f", and contradicts it: {', '.join(differ)}" if differ else ""


def row_lines(path: Path) -> list[int]:
    """The line number of each row of a JSON Lines file (blank lines skipped), in the order read_rows returns."""
    return [line for line, _ in iter_jsonl(path)]


def read_seed_dialogues(path: Path) -> list[SeedDialogue]:
    """Seed dialogues, and no dialogue twice: a repeated one only weighs more in the supervised start."""
    rows = read_rows(path, SeedDialogue)
    first: dict[tuple[str, str], int] = {}
    for line, row in zip(row_lines(path), rows):
        key = (row.prompt_id, normalised(row.response))
        if key in first:
            raise InputError(f"{path}:{line}: the dialogue of line {first[key]} again (prompt_id {row.prompt_id!r}, "
                             "same response)")
        first[key] = line
    return rows


def read_gold_pairs(path: Path) -> list[GoldPair]:
    """Gold pairs with unique ids, and no pair twice: once more it only weighs more in the judge's agreement;
    with the other answer preferred the gold set contradicts itself."""
    rows = read_rows(path, GoldPair, unique_key="id")
    first: dict[tuple, tuple[int, GoldPair]] = {}
    for line, row in zip(row_lines(path), rows):
        a, b = normalised(row.response_a), normalised(row.response_b)
        key = (normalised(row.prompt), *sorted((a, b)))
        preferred = a if row.human_preference == "a" else b
        if key in first:
            earlier_line, earlier = first[key]
            earlier_a = earlier.human_preference == "a"
            earlier_preferred = normalised(earlier.response_a if earlier_a else earlier.response_b)
            verdict = "and prefers the other answer" if preferred != earlier_preferred else "with the same preference"
            raise InputError(f"{path}:{line}: pair {row.id!r} repeats pair {earlier.id!r} (line {earlier_line}) "
                             f"{verdict}")
        first[key] = (line, row)
    return rows


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
        raise InputError(f"{path}: {describe_invalid(err)}") from None


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
            pattern = re.compile(data[name], re.IGNORECASE)
        except re.error as err:
            raise InputError(f"{path}:{lines.get(name, '?')}: template {name!r} is not a valid regular expression "
                             f"({err})") from None
        # a pattern that matches nothing at all matches every answer: each would count as a refusal
        if pattern.match(""):
            raise InputError(f"{path}:{lines.get(name, '?')}: template {name!r} matches an empty answer, so it "
                             "would take every answer for a refusal")
    _check_template_meaning(path, data, lines)
    return data


# The templates that instruct a generative judge: placeholders alone would hand it the texts with no question
INSTRUCTIONS = ("pairwise", "pairwise_reasoning", "pointwise", "critique", "revision")


def _check_template_meaning(path: Path, data: dict[str, str], lines: dict[str, int]) -> None:
    import string

    for name, text in data.items():
        stray = _stray_character(text)
        if stray is not None:
            raise InputError(f"{path}:{lines.get(name, '?')}: template {name!r} contains the control character "
                             f"U+{ord(stray):04X}")
    for name in INSTRUCTIONS:
        words = "".join(literal for literal, _, _, _ in string.Formatter().parse(data[name]))
        if not any(ch.isalpha() for ch in words):
            raise InputError(f"{path}:{lines.get(name, '?')}: template {name!r} is only placeholders: the judge "
                             "would get the texts with no instruction")


def _key_lines(path: Path) -> dict[str, int]:
    """The line of each top-level key of a YAML mapping (the file already parsed once)."""
    node = yaml.compose(Path(path).read_text(encoding="utf-8"))
    return {key.value: key.start_mark.line + 1 for key, _ in getattr(node, "value", []) if hasattr(key, "value")}


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """The one atomic writer: yields a temporary path beside `path` for any writer (text, parquet, a plot), then
    renames it over `path`, so that a reader never sees half a file; on an error `path` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp" + path.suffix)  # keeps the suffix that some writers go by
    try:
        yield tmp
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> Path:
    """Text, written atomically and flushed to disk before the rename."""
    with atomic_file(path) as tmp, tmp.open("w", encoding="utf-8", newline="") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    return Path(path)


def write_jsonl(path: Path, rows: Iterable[dict[str, Any] | BaseModel]) -> Path:
    lines = [json.dumps(row.model_dump(mode="json") if isinstance(row, BaseModel) else row, ensure_ascii=False) + "\n"
             for row in rows]
    return write_text(path, "".join(lines))


def write_json(path: Path, data: Any) -> Path:
    return write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


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
