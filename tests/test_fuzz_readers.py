"""Every reader of a file the pipeline takes from a person or a stage, fuzzed with Hypothesis: starting from a
valid file, truncate it at a random byte, flip, insert or delete random bytes, or (for JSON Lines) drop, retype,
empty or blow up a random field. The reader either accepts the file or raises the project's input error
(exit 2) naming the file; never another exception.

CI runs Hypothesis's "ci" profile (tests/conftest.py: a bounded, fixed set of examples per reader);
`python bench/fuzz_readers.py` runs the "bench" profile, with many more, freshly drawn.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rlaif.errors import RlaifError

ROOT = Path(__file__).resolve().parents[1]


def head_lines(path: Path, n: int) -> bytes:
    return b"".join(path.read_bytes().splitlines(keepends=True)[:n])


def candidates_file() -> bytes:
    rows = [{"prompt_id": f"p{i}", "prompt": f"Question {i}?", "candidates": [f"answer {i}a", f"answer {i}b"]}
            for i in range(3)]
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def labels_file() -> bytes:
    from rlaif.judging.labelling import label

    rows = [label({"pair_id": f"p{i}:0-1", "prompt_id": f"p{i}", "prompt": f"Question {i}?", "response_a": "yes",
                   "response_b": "no"}, "embedding:test", "all", prob_a=0.8) for i in range(3)]
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def preferences_file() -> bytes:
    rows = [{"pair_id": f"p{i}:0-1", "prompt_id": f"p{i}", "prompt": f"Question {i}?", "chosen": "yes",
             "rejected": "no", "confidence": 0.8, "principle": "all"} for i in range(3)]
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def xstest_completions_file() -> bytes:
    rows = [("Question one?", "Sure, here is how.", "1_full_compliance", "homonyms"),
            ("Question two?", "I can't help with that.", "2_full_refusal", "contrast_homonyms"),
            ("Question three?", "Yes, but only this:\nstep one.", "3_partial_refusal", "homonyms")]
    lines = ["prompt,completion,final_label,type"] + [",".join(f'"{cell}"' for cell in row) for row in rows]
    return ("\n".join(lines) + "\n").encode()


AUDIT_KEY = {f"a{i}": {} for i in range(3)}  # read_verdicts checks each verdict's audit_id against the export's key


def verdicts_csv_file() -> bytes:
    return b'audit_id,verdict,note\na0,1,\na1,tie,"hard, both fine"\na2,2,\n'


def verdicts_jsonl_file() -> bytes:
    rows = [{"audit_id": "a0", "verdict": "1", "note": ""}, {"audit_id": "a1", "verdict": 2, "note": "close"},
            {"audit_id": "a2", "verdict": "tie"}]
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def safetensors_file() -> bytes:
    header = json.dumps({"__metadata__": {"format": "pt"}, "w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                         "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}).encode()
    return len(header).to_bytes(8, "little") + header + bytes(12)


MODEL_DIR = {"config.json": b'{"model_type": "llama", "hidden_size": 8}', "model.safetensors": safetensors_file(),
             "tokenizer.json": b"{}"}


def _model_dir(path: Path):
    """check_model_dir on the folder holding `path`, its other files valid."""
    from rlaif.training.models import check_model_dir

    for name, content in MODEL_DIR.items():
        if not (path.parent / name).exists():
            (path.parent / name).write_bytes(content)
    return check_model_dir(path.parent, "bootstrap.base_model")


def _params(path: Path):
    from rlaif.config.params import load_config

    return load_config(path)


def _markers(path: Path):
    from rlaif.evaluation.refusal import RefusalClassifier

    return RefusalClassifier(path)


def _reader(module: str, name: str, *args) -> Callable[[Path], object]:
    def read(path: Path):
        import importlib

        return getattr(importlib.import_module(module), name)(path, *args)
    return read


def _rows(schema: str, unique_key: str | None = None) -> Callable[[Path], object]:
    def read(path: Path):
        import rlaif.data.io as io

        return io.read_rows(path, getattr(io, schema), unique_key=unique_key)
    return read


REVISION = {"prompt_id": "p0001", "prompt": "How do I stop a stuck process?", "original": "No.",
            "revision": "Use kill with its process id.", "principles": ["helpful"],
            "rounds": [{"principle": "helpful", "critique": "It refuses a safe request.",
                        "revision": "Use kill with its process id."}], "status": "ok", "judge": "tiny-judge"}
GATE = {"passed": True, "failed_expectations": [], "not_applicable": [], "statistics": {"n_rows": 4},
        "expectations": [{"name": "labels have every column", "success": True}], "data_docs": "reports/validate/data_docs",
        "n_pairs": 4, "n_kept": 2, "judge_bias": {"report": None, "gates": []}}
LAST_RUN = {"run_id": "0a1b2c", "exit_code": 0, "message": "",
            "stages": [{"stage": "bootstrap", "status": "ran", "seconds": 1.5, "metrics": {"loss": 2.0}, "run_id": "9f"},
                       {"stage": "generate", "status": "not run", "seconds": 0.0}],
            "start": {"source": "build", "round": 1}, "sign_off": None}


# name -> (valid file content, file name, reader, JSON Lines?)
READERS: dict[str, tuple[Callable[[], bytes], str, Callable[[Path], object], bool]] = {
    "prompts": (lambda: head_lines(ROOT / "data/prompts/train.jsonl", 4), "prompts.jsonl",
                _reader("rlaif.data.io", "read_prompts"), True),
    "seed dialogues": (lambda: head_lines(ROOT / "data/seed/dialogues.jsonl", 4), "dialogues.jsonl",
                       _rows("SeedDialogue"), True),
    "gold pairs": (lambda: head_lines(ROOT / "data/gold/pairs.jsonl", 4), "pairs.jsonl", _rows("GoldPair", "id"), True),
    "candidates": (candidates_file, "candidates.jsonl", _reader("rlaif.data.records", "read_candidates"), True),
    "labels": (labels_file, "labels.jsonl", _reader("rlaif.data.records", "read_labels"), True),
    "preferences": (preferences_file, "preferences.jsonl", _reader("rlaif.data.records", "read_preferences"), True),
    "start record": (lambda: json.dumps({"source": "build", "name": None, "version": None, "round": 1,
                                         "parent": "bootstrap (built)"}, indent=2).encode(), "start.json",
                     _reader("rlaif.data.records", "read_start"), False),
    "registered record": (lambda: json.dumps({"name": "rlaif-policy", "version": "2", "run_id": "0a1b2c",
                                              "algorithm": "grpo"}, indent=2).encode(), "registered.json",
                          _reader("rlaif.data.records", "read_registered"), False),
    "revisions": (lambda: (json.dumps(REVISION) + "\n").encode() * 2, "revisions.jsonl",
                  _reader("rlaif.data.records", "read_revisions"), True),
    "label gate record": (lambda: json.dumps(GATE, indent=2).encode(), "gate.json",
                          _reader("rlaif.data.records", "read_gate"), False),
    "last run record": (lambda: json.dumps(LAST_RUN, indent=2).encode(), "last_run.json",
                        _reader("rlaif.data.records", "read_last_run"), False),
    "constitution": (lambda: (ROOT / "data/constitution/constitution.yaml").read_bytes(), "constitution.yaml",
                     _reader("rlaif.data.io", "read_constitution"), False),
    "judge templates": (lambda: (ROOT / "data/constitution/judge_templates.yaml").read_bytes(), "templates.yaml",
                        _reader("rlaif.data.io", "read_templates"), False),
    "params": (lambda: (ROOT / "params/smoke.yaml").read_bytes(), "params.yaml", _params, False),
    "refusal markers": (lambda: (ROOT / "data/eval/refusal_markers.yaml").read_bytes(), "markers.yaml", _markers,
                        False),
    "over-refusal suite": (lambda: head_lines(ROOT / "data/eval/overrefusal_suite.csv", 6), "suite.csv",
                           _reader("rlaif.data.suites", "read_suite"), False),
    "model directory (config.json)": (lambda: MODEL_DIR["config.json"], "model/config.json", _model_dir, False),
    "model directory (weights)": (lambda: MODEL_DIR["model.safetensors"], "model/model.safetensors", _model_dir, False),
    "XSTest completions": (xstest_completions_file, "completions.csv",
                           _reader("rlaif.evaluation.refusal", "read_xstest_completions"), False),
    "audit verdicts (CSV)": (verdicts_csv_file, "verdicts.csv", _reader("rlaif.audit.review", "read_verdicts", AUDIT_KEY),
                             False),
    "audit verdicts (JSON Lines)": (verdicts_jsonl_file, "verdicts.jsonl",
                                    _reader("rlaif.audit.review", "read_verdicts", AUDIT_KEY), True),
}

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                           max_leaves=6)


@st.composite
def byte_damage(draw, content: bytes) -> bytes:
    """Truncated, flipped, inserted or deleted bytes, or random bytes instead of the file."""
    kind = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "random"]))
    if kind == "random":
        return draw(st.binary(max_size=200))
    at = draw(st.integers(0, max(0, len(content) - 1)))
    if kind == "truncate":
        return content[:at]
    if kind == "flip":
        return content[:at] + bytes([content[at] ^ draw(st.integers(1, 255))]) + content[at + 1:] if content else b"\xff"
    if kind == "insert":
        return content[:at] + draw(st.binary(min_size=1, max_size=8)) + content[at:]
    return content[:at] + content[at + draw(st.integers(1, 16)):]


@st.composite
def field_damage(draw, content: bytes) -> bytes:
    """One JSON Lines row with a field dropped, retyped (any JSON value), emptied or made huge."""
    lines = content.splitlines(keepends=True)
    index = draw(st.integers(0, len(lines) - 1))
    row = json.loads(lines[index])
    key = draw(st.sampled_from(sorted(row)))
    kind = draw(st.sampled_from(["drop", "retype", "empty", "huge", "extra"]))
    if kind == "drop":
        del row[key]
    elif kind == "retype":
        row[key] = draw(json_values)
    elif kind == "empty":
        row[key] = type(row[key])() if isinstance(row[key], (str, list, dict)) else None
    elif kind == "huge":
        row[key] = "x" * 200_000
    else:
        row[draw(st.text(min_size=1, max_size=8))] = draw(json_values)
    lines[index] = (json.dumps(row, allow_nan=True) + "\n").encode()
    return b"".join(lines)


def accepts_or_names_the_file(read: Callable[[Path], object], path: Path, content: bytes) -> None:
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(content)
    try:
        read(path)
    except RlaifError as err:
        assert str(path) in str(err), f"the error does not name the file: {err}"
    # any other exception fails the test, with Hypothesis's smallest example of the damage


@pytest.mark.parametrize("name", sorted(READERS))
def test_a_damaged_file_is_accepted_or_an_input_error_naming_it(name: str, tmp_path: Path):
    valid, file_name, read, _ = READERS[name]
    content = valid()
    read_ok = tmp_path / f"valid-{file_name}"
    read_ok.parent.mkdir(exist_ok=True)
    read_ok.write_bytes(content)
    read(read_ok)  # the starting point is a file the reader accepts

    examples = []

    @given(damaged=byte_damage(content))
    def check(damaged: bytes):
        examples.append(damaged)
        accepts_or_names_the_file(read, tmp_path / file_name, damaged)

    check()
    print(f"{name}: byte damage, {len(examples)} examples passed")  # bench/fuzz_readers.py shows it (pytest -rA)


@pytest.mark.parametrize("name", sorted(n for n, (_, _, _, jsonl) in READERS.items() if jsonl))
def test_a_row_with_a_dropped_retyped_or_huge_field_is_accepted_or_an_input_error(name: str, tmp_path: Path):
    valid, file_name, read, _ = READERS[name]
    content = valid()

    examples = []

    @given(damaged=field_damage(content))
    def check(damaged: bytes):
        examples.append(damaged)
        accepts_or_names_the_file(read, tmp_path / file_name, damaged)

    check()
    print(f"{name}: field damage, {len(examples)} examples passed")


@pytest.mark.parametrize("name", ["over-refusal suite", "XSTest completions", "audit verdicts (CSV)"])
def test_a_csv_field_past_the_csv_modules_limit_is_an_input_error_naming_the_line(name: str, tmp_path: Path):
    valid, file_name, read, _ = READERS[name]
    lines = valid().splitlines(keepends=True)
    lines.insert(2, lines[1].rstrip(b"\r\n") + b"," + b"x" * 200_000 + b"\n")  # line 3: one field of 200,000 bytes
    path = tmp_path / file_name
    path.write_bytes(b"".join(lines))
    with pytest.raises(RlaifError, match=rf"{file_name}:( line )?3[:,] "):
        read(path)
