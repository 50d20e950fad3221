"""Over-refusal suites in XSTest's prompt-file format: safe prompts that look unsafe, and unsafe contrasts.

Columns: `prompt` and `label` (safe | unsafe) are required; `id`, `type`, `focus` and `note` are kept when
present. The project writes its own suite (data/eval/overrefusal_suite.csv); XSTest's own
`xstest_prompts.csv`, or any file in its format, can be given by path.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from rlaif.data.io import MAX_PROMPT_CHARS, normalised, read_text, text_problem
from rlaif.errors import InputError

LABELS = ("safe", "unsafe")


@dataclass(frozen=True)
class SuitePrompt:
    id: str
    prompt: str
    label: str
    type: str


def read_suite(path: Path, per_label: int | None = None) -> list[SuitePrompt]:
    """Every prompt of the suite, or only the first `per_label` safe and the first `per_label` unsafe ones (each
    label keeps its measure in a quick profile); the whole file is checked either way."""
    path = Path(path)
    reader = csv.DictReader(read_text(path, "an XSTest-format suite, CSV").splitlines(keepends=True))
    try:
        rows = _suite_rows(path, reader)
    except csv.Error as err:  # a field over the csv module's size limit
        raise InputError(f"{path}:{reader.line_num + 1}: not valid CSV ({err})") from None  # the line it failed on
    if per_label is None:
        return rows
    kept = {label: [row for row in rows if row.label == label][:per_label] for label in LABELS}
    return [row for row in rows if row in kept[row.label]]


def _suite_rows(path: Path, reader: csv.DictReader) -> list[SuitePrompt]:
    missing = [c for c in ("prompt", "label") if c not in (reader.fieldnames or [])]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)} (an XSTest-format suite has "
                         "prompt, label and optionally id, type)")
    rows: list = []
    seen: set = set()
    texts: dict = {}
    for row in reader:
        line = reader.line_num  # where the row ends: a quoted prompt may span lines
        label, prompt = (row.get("label") or "").strip(), (row.get("prompt") or "").strip()
        if label not in LABELS:
            raise InputError(f"{path}:{line}: field 'label' must be safe or unsafe, got {label!r}")
        if not prompt:
            raise InputError(f"{path}:{line}: field 'prompt' is empty")
        problem = text_problem(prompt, MAX_PROMPT_CHARS)
        if problem:
            raise InputError(f"{path}:{line}: field 'prompt' {problem}")
        ident = (row.get("id") or "").strip() or str(line)
        if ident in seen:
            raise InputError(f"{path}:{line}: duplicate id {ident!r}")
        seen.add(ident)
        _same_prompt_again(path, line, prompt, label, texts)
        rows.append(SuitePrompt(ident, prompt, label, (row.get("type") or "").strip() or label))
    if not rows:
        raise InputError(f"{path}: the suite has no prompts")
    # the suite exists to measure needless refusals: without a safe prompt over-refusal is not measured at all
    if not any(r.label == "safe" for r in rows):
        raise InputError(f"{path}: no prompt is labelled safe, so over-refusal cannot be measured")
    return rows


def _same_prompt_again(path: Path, line: int, prompt: str, label: str, texts: dict[str, tuple[int, str]]) -> None:
    """A prompt twice counts twice in the rates; with the other label it is both safe and unsafe."""
    key = normalised(prompt)
    if key in texts:
        first, first_label = texts[key]
        clash = f", labelled {first_label} there and {label} here" if first_label != label else ""
        raise InputError(f"{path}:{line}: the prompt of line {first} again{clash}")
    texts[key] = (line, label)


def suite_rates(samples: list[dict]) -> dict[str, float]:
    """Over-refusal: refusals (full or partial) on safe prompts; harmlessness: refusals on unsafe ones."""
    safe = [s for s in samples if s["label"] == "safe"]
    unsafe = [s for s in samples if s["label"] == "unsafe"]
    share = lambda items: sum(s["refused"] for s in items) / len(items) if items else float("nan")  # noqa: E731
    return {"over_refusal_rate": share(safe), "harmless_rate": share(unsafe), "n_safe": len(safe),
            "n_unsafe": len(unsafe)}


def rates_by_type(samples: list[dict]) -> dict[str, dict[str, float]]:
    types = sorted({s["type"] for s in samples})
    return {t: {"label": next(s["label"] for s in samples if s["type"] == t),
                "refusal_rate": sum(s["refused"] for s in samples if s["type"] == t)
                / sum(1 for s in samples if s["type"] == t)} for t in types}
