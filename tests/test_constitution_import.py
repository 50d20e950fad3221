"""Import of the Constitutional AI paper's prompt format (anthropics/ConstitutionalHarmlessnessPaper,
prompts/): a JSON list of comparison instructions and a JSON object of critique/revision requests.
The texts below are written for this test, in the paper's layout."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rlaif.data.constitution_import import import_cai, write_constitution
from rlaif.data.io import read_constitution
from rlaif.errors import InputError

COMPARISONS = [
    "\nPlease choose the answer that is kind, truthful and safe. Options:",
    "\nWhich of these answers is less likely to help someone get hurt? Choose that one. Options:",
    "Choose the answer that helps with the question that was actually asked.",  # bare text, no scaffolding
]
CRITIQUES = {
    "harmful0": {
        "prompt": ["\n\nCritiqueRequest: Point out where the assistant's last answer could help someone cause harm.\n\nCritique:"],
        "edit_request": "\n\nRevisionRequest: Rewrite the answer without anything that could help cause harm.\n\nRevision:",
    },
    "harmful1": {
        "prompt": ["\n\nCritiqueRequest: Say whether the answer is rude or demeaning to anyone.\n\nCritique:"],
        "edit_request": "\n\nRevisionRequest: Rewrite the answer so that it is polite to everyone. Ünïcode stays.\n\nRevision:",
    },
    "twofold": {
        "prompt": ["\n\nCritiqueRequest: Is the answer vague?\n\nCritique:", "Is the answer too long?"],
        "edit_request": "Rewrite the answer to be clear and short.",
    },
}


def write(path: Path, data) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    return write(tmp_path / "comparisons.json", COMPARISONS), write(tmp_path / "critiques.json", CRITIQUES)


def test_ids_kinds_and_texts(files):
    comparisons, critiques = files
    c = import_cai(comparisons, critiques, "cai-test", "0.1.0")
    assert (c.name, c.version) == ("cai-test", "0.1.0")
    assert [p.id for p in c.of_kind("comparison")] == ["cai_comparison_0", "cai_comparison_1", "cai_comparison_2"]
    assert [p.id for p in c.of_kind("critique_revision")] == ["harmful0", "harmful1", "twofold_0", "twofold_1"]
    # the paper's scaffolding ("\n", "Options:", "CritiqueRequest:", "Critique:", ...) is removed
    assert c.principles[0].text == "Please choose the answer that is kind, truthful and safe."
    assert c.principles[2].text == COMPARISONS[2]
    assert all(p.examples == [] for p in c.principles)  # no invented examples
    h0 = c.principles[3]
    assert h0.critique == "Point out where the assistant's last answer could help someone cause harm."
    assert h0.revision == "Rewrite the answer without anything that could help cause harm."
    assert c.principles[4].revision.endswith("Ünïcode stays.")
    assert c.principles[5].critique == "Is the answer vague?" and c.principles[6].critique == "Is the answer too long?"
    assert c.principles[5].revision == c.principles[6].revision == "Rewrite the answer to be clear and short."


def test_round_trip(files, tmp_path: Path):
    c = import_cai(*files, "cai-test", "0.1.0")
    out = write_constitution(c, tmp_path / "out" / "constitution.yaml")
    assert read_constitution(out) == c
    assert not list(out.parent.glob("*.tmp*"))
    # and again: writing what was read gives the same bytes
    text = out.read_text(encoding="utf-8")
    write_constitution(read_constitution(out), out)
    assert out.read_text(encoding="utf-8") == text


def test_comparisons_only(files):
    c = import_cai(files[0], None, "cai", "1")
    assert len(c.principles) == 3 and not c.of_kind("critique_revision")


def test_critiques_alone_cannot_judge_pairs(files):
    with pytest.raises(InputError, match=r"critiques\.json: .*at least one comparison principle"):
        import_cai(None, files[1], "cai", "1")
    with pytest.raises(InputError, match="give a comparisons file"):
        import_cai(None, None, "cai", "1")


def test_round_trip_of_the_project_constitution(tmp_path: Path):
    from conftest import ROOT

    c = read_constitution(ROOT / "data/constitution/constitution.yaml")
    assert read_constitution(write_constitution(c, tmp_path / "c.yaml")) == c


@pytest.mark.parametrize("data, message", [
    (["ok", 3, "ok"], "comparisons.json: [1]: expected a string, got a number"),
    (["ok", "ok", "ok", None], "comparisons.json: [3]: expected a string, got null"),
    (["ok", "\n Options:"], "comparisons.json: [1]: empty instruction"),
    ({"a": "b"}, "comparisons.json: expected a JSON list of comparison instructions, got an object"),
    ([], "comparisons.json: no comparison instructions"),
])
def test_bad_comparisons(tmp_path: Path, data, message):
    path = write(tmp_path / "comparisons.json", data)
    with pytest.raises(InputError, match=re.escape(message)):
        import_cai(path, None, "cai", "1")


def _entry(**override):
    entry = {"prompt": ["CritiqueRequest: Is it harmful?\n\nCritique:"], "edit_request": "RevisionRequest: Fix it.\n\nRevision:"}
    entry.update(override)
    return {k: v for k, v in entry.items() if v is not ...}


@pytest.mark.parametrize("data, message", [
    ({"harmful0": _entry(), "harmful1": _entry(), "harmful2": _entry(edit_request=...)}, "critiques.json: harmful2.edit_request: missing"),
    ({"harmful0": _entry(prompt=...)}, "critiques.json: harmful0.prompt: missing"),
    ({"harmful0": _entry(prompt="Is it harmful?")}, "critiques.json: harmful0.prompt: expected a list of strings, got a string"),
    ({"harmful0": _entry(prompt=[])}, "critiques.json: harmful0.prompt: empty list"),
    ({"harmful0": _entry(prompt=["fine", {"x": 1}])}, "critiques.json: harmful0.prompt[1]: expected a string, got an object"),
    ({"harmful0": _entry(prompt=["\n\nCritiqueRequest: \n\nCritique:"])}, "critiques.json: harmful0.prompt[0]: empty critique request"),
    ({"harmful0": _entry(edit_request=["Fix it."])}, "critiques.json: harmful0.edit_request: expected a string, got a list"),
    ({"harmful0": _entry(edit_request="  ")}, "critiques.json: harmful0.edit_request: empty revision request"),
    ({"harmful0": _entry(notes="x")}, "critiques.json: harmful0.notes: unknown field"),
    ({"harmful0": ["Is it harmful?"]}, "critiques.json: harmful0: expected an object with 'prompt' and 'edit_request', got a list"),
    (["Is it harmful?"], "critiques.json: expected a JSON object of critique entries"),
    ({}, "critiques.json: no critique entries"),
])
def test_bad_critiques(tmp_path: Path, files, data, message):
    path = write(tmp_path / "critiques.json", data)
    with pytest.raises(InputError, match=re.escape(message)):
        import_cai(files[0], path, "cai", "1")


def test_critique_id_clashing_with_a_comparison_id(tmp_path: Path, files):
    path = write(tmp_path / "critiques.json", {"cai_comparison_0": _entry()})
    with pytest.raises(InputError, match=r"critiques\.json.*duplicate principle ids: \['cai_comparison_0'\]"):
        import_cai(files[0], path, "cai", "1")


@pytest.mark.parametrize("raw, message", [
    (b"", "comparisons.json: empty file"),
    (b"  \n\n", "comparisons.json: empty file"),
    (b'["one", "two",]', "comparisons.json: not valid JSON (line 1 column"),
    (b'["one", "tw\xff"]', "comparisons.json: not UTF-8 text (byte 11)"),
    (b'{"a": 1, "a": 2}', "comparisons.json: not valid JSON for import (duplicate key 'a')"),
])
def test_unreadable_files(tmp_path: Path, raw, message):
    path = tmp_path / "comparisons.json"
    path.write_bytes(raw)
    with pytest.raises(InputError, match=re.escape(message)):
        import_cai(path, None, "cai", "1")


def test_missing_file(tmp_path: Path):
    with pytest.raises(InputError, match=r"nope\.json: file not found"):
        import_cai(tmp_path / "nope.json", None, "cai", "1")


def test_utf8_bom_is_accepted(tmp_path: Path):
    path = tmp_path / "comparisons.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(["Choose the kinder answer. Options:"]).encode())
    assert import_cai(path, None, "cai", "1").principles[0].text == "Choose the kinder answer."


def test_embedding_judge_needs_examples_the_import_does_not_invent(files):
    from rlaif.judging.judges.embedding import EmbeddingJudge

    c = import_cai(files[0], None, "cai", "1")
    judge = EmbeddingJudge.__new__(EmbeddingJudge)  # skip loading the encoder: the check comes first
    judge.constitution = c
    with pytest.raises(ValueError, match="needs worked examples"):
        judge._build_principles()


def test_cli_imports_and_reports_bad_files(tmp_path: Path):
    from conftest import ROOT, rlaif

    out = tmp_path / "cai.yaml"
    result = rlaif(ROOT, "constitution-import", "--comparisons", str(write(tmp_path / "c.json", COMPARISONS)),
                   "--critiques", str(write(tmp_path / "r.json", CRITIQUES)), "--name", "cai", "--version", "1.0",
                   "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert len(read_constitution(out).principles) == len(COMPARISONS) + 4
    written = out.read_bytes()
    again = rlaif(ROOT, "constitution-import", "--comparisons", str(tmp_path / "c.json"), "--name", "other",
                  "--version", "2.0", "--out", str(out))  # over the constitution in use: refused, file kept
    assert again.returncode == 2 and "cai.yaml exists" in again.stderr and "--force" in again.stderr
    assert out.read_bytes() == written
    forced = rlaif(ROOT, "constitution-import", "--comparisons", str(tmp_path / "c.json"), "--name", "other",
                   "--version", "2.0", "--out", str(out), "--force")
    assert forced.returncode == 0 and read_constitution(out).version == "2.0"
    bad = write(tmp_path / "bad.json", COMPARISONS[:1] + [None])
    result = rlaif(ROOT, "constitution-import", "--comparisons", str(bad), "--name", "x", "--version", "1",
                   "--out", str(tmp_path / "never.yaml"))
    assert result.returncode == 2
    assert "bad.json: [1]" in " ".join(result.stderr.split())
    assert not (tmp_path / "never.yaml").exists()
