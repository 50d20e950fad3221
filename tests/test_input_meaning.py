"""Inputs that parse but mean nothing: each rule of docs/inputs.md, one case each. A small bad file is written (a copy
of the shipped one with one thing broken), its reader or `rlaif check`'s preflight must refuse it, naming the file,
the line or key, and the reason. The shipped data and every shipped profile must still pass.

Fast: no model loads, no server; one case runs the real `rlaif check` to show exit 2 and its one-line message."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, rlaif

from rlaif.errors import ConfigError, InputError, RlaifError

PROMPT = {"id": "x1", "prompt": "How do I make fresh pasta dough?", "expected": "help", "category": "cooking",
          "topic": "pasta dough", "harm_category": "none", "template": "cooking-t01", "language": "en", "group": None}


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def refused(read, path: Path, *fragments: str) -> str:
    """`read(path)` raises the project's input error naming the file and every fragment (a line, a key, the reason)."""
    with pytest.raises(RlaifError) as caught:
        read(path)
    message = str(caught.value)
    assert str(path) in message or path.name in message, message
    for fragment in fragments:
        assert fragment in message, message
    assert caught.value.exit_code == 2
    return message


# ---------------------------------------------------------------------------------------------------------------------
# prompts (train.jsonl, eval.jsonl, drops): one row broken, on line 2


@pytest.mark.parametrize("field, value, reason", [
    ("prompt", " ?!  ... ", "has no letter or digit"),
    ("prompt", "How " + "very " * 2000 + "?", "over the limit of 8,000"),
    ("prompt", "How do I\x00 bake bread?", "control character U+0000"),
    ("prompt", "How do I bake \ufffd bread?", "control character U+FFFD"),
    ("prompt", "How do I bake \u202e bread?", "control character U+202E"),
    ("id", " x2", "has spaces around it"),
    ("category", "   ", "is blank"),
    ("topic", "pasta\ndough", "line break"),
    ("language", "English", "field 'language'"),
    ("expected", "refuse", "harm_category 'none'"),
    ("harm_category", "weapons", "expected 'help' but harm_category 'weapons'"),
])
def test_a_prompt_that_means_nothing_is_refused(tmp_path: Path, field: str, value, reason: str):
    from rlaif.data.io import read_prompts

    path = write_jsonl(tmp_path / "train.jsonl", [PROMPT, {**PROMPT, "id": "x2", "prompt": "Any tips for a 5k?",
                                                           field: value}])
    refused(read_prompts, path, "train.jsonl:2", reason)


@pytest.mark.parametrize("changes, reason", [
    ({}, "has the text of 'x1' (line 1)"),
    ({"expected": "refuse", "harm_category": "drugs"}, "contradicts it: expected 'refuse' vs 'help'"),
])
def test_a_prompt_text_twice_in_one_file_is_refused(tmp_path: Path, changes: dict, reason: str):
    from rlaif.data.io import read_source_prompts

    again = {**PROMPT, "id": "x2", "prompt": "  how do I make FRESH pasta dough? ", **changes}
    path = write_jsonl(tmp_path / "eval.jsonl", [PROMPT, again])
    refused(read_source_prompts, path, "eval.jsonl:2", reason)


def test_a_drop_repeating_a_prompt_of_its_own_is_refused(tmp_path: Path):
    from rlaif.lifecycle.rounds import read_all_prompts

    write_jsonl(tmp_path / "train.jsonl", [PROMPT])
    drop = write_jsonl(tmp_path / "drops/2026-12-07.jsonl", [{**PROMPT, "id": "d1"}, {**PROMPT, "id": "d2"}])
    refused(lambda _: read_all_prompts(tmp_path / "train.jsonl", tmp_path / "drops"), drop, "2026-12-07.jsonl:2",
            "has the text of 'd1'")


# ---------------------------------------------------------------------------------------------------------------------
# seed dialogues, gold pairs

DIALOGUE = {"prompt_id": "p0006", "prompt": "How do I make fresh pasta dough?",
            "response": "Mix flour and eggs, knead for ten minutes and rest the dough.", "behaviour": "help"}
PAIR = {"id": "g1", "prompt": "How do I make fresh pasta dough?", "response_a": "Mix flour and eggs, then knead.",
        "response_b": "I can't help with that.", "human_preference": "a", "annotator": "rlaif-team"}


@pytest.mark.parametrize("rows, reason", [
    ([{**DIALOGUE, "response": "How do I make fresh pasta dough?"}], "the response repeats the prompt"),
    ([{**DIALOGUE, "response": "..."}], "field 'response': has no letter or digit"),
    ([DIALOGUE, {**DIALOGUE, "response": DIALOGUE["response"].upper()}], "the dialogue of line 1 again"),
])
def test_a_seed_dialogue_that_means_nothing_is_refused(tmp_path: Path, rows: list, reason: str):
    from rlaif.data.io import read_seed_dialogues

    path = write_jsonl(tmp_path / "dialogues.jsonl", rows)
    refused(read_seed_dialogues, path, f"dialogues.jsonl:{len(rows)}", reason)


@pytest.mark.parametrize("rows, reason", [
    ([{**PAIR, "response_b": " mix flour and EGGS, then knead."}], "no preference is possible"),
    ([{**PAIR, "annotator": ""}], "field 'annotator'"),
    ([PAIR, {**PAIR, "id": "g2", "response_a": PAIR["response_b"], "response_b": PAIR["response_a"]}],
     "repeats pair 'g1' (line 1) and prefers the other answer"),
])
def test_a_gold_pair_that_means_nothing_is_refused(tmp_path: Path, rows: list, reason: str):
    from rlaif.data.io import read_gold_pairs

    refused(read_gold_pairs, write_jsonl(tmp_path / "pairs.jsonl", rows), f"pairs.jsonl:{len(rows)}", reason)


# ---------------------------------------------------------------------------------------------------------------------
# constitution

def _swapped(example: dict) -> dict:
    return {**example, "chosen": example["rejected"], "rejected": example["chosen"]}


def _charter(break_it) -> dict:
    data = yaml.safe_load((ROOT / "data/constitution/constitution.yaml").read_text(encoding="utf-8"))
    by_id = {p["id"]: p for p in data["principles"]}
    break_it(by_id)
    return data


@pytest.mark.parametrize("break_it, reason", [
    (lambda p: p["harmless"]["examples"][0].update(rejected=p["harmless"]["examples"][0]["chosen"]),
     "principle 'harmless': example 1: chosen and rejected are the same text"),
    (lambda p: p["helpful"].update(opposes="helpful"), "principle 'helpful' opposes itself"),
    (lambda p: p["harmless"].update(opposes="revise_harmful"), "opposes 'revise_harmful', a critique_revision"),
    (lambda p: p["helpful"].update(opposes="coherent"),
     "principle 'harmless' opposes 'helpful', which opposes 'coherent'"),
    (lambda p: p["coherent"].update(weight=float("inf")), "principles.3.weight"),
    (lambda p: p["coherent"].update(critique="Find the incoherent parts."), "principle 'coherent': 'critique' and"),
    (lambda p: p["revise_harmful"].update(examples=p["harmless"]["examples"][:1]),
     "'examples' and 'opposes' are read only"),
    (lambda p: p["coherent"]["examples"].append(_swapped(p["harmless"]["examples"][0])),
     "prefers the answer that principle 'harmless'"),
    (lambda p: p["respectful"].update(text=" -- "), "principles.2.text': has no letter or digit"),
    (lambda p: p["revise_harmful"].update(revision="\x1b[0m"), "principle 'revise_harmful': revision contains"),
])
def test_a_constitution_that_contradicts_itself_is_refused(tmp_path: Path, break_it, reason: str):
    from rlaif.data.io import read_constitution

    path = tmp_path / "constitution.yaml"
    path.write_text(yaml.safe_dump(_charter(break_it), allow_unicode=True), encoding="utf-8")
    refused(read_constitution, path, reason)


# ---------------------------------------------------------------------------------------------------------------------
# judge templates (read_templates already checks placeholders and syntax: these are what it did not)

@pytest.mark.parametrize("name, text, reason", [
    ("refusal_opening", "^(no)?", "template 'refusal_opening' matches an empty answer"),
    ("pointwise", "{principle}\n{prompt}\n{response}", "template 'pointwise' is only placeholders"),
    ("query", "User:\x00 {prompt}", "template 'query' contains the control character U+0000"),
])
def test_judge_templates_that_mean_nothing_are_refused(tmp_path: Path, name: str, text: str, reason: str):
    from rlaif.data.io import read_templates

    data = yaml.safe_load((ROOT / "data/constitution/judge_templates.yaml").read_text(encoding="utf-8"))
    data[name] = text
    path = tmp_path / "templates.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    refused(read_templates, path, reason, "templates.yaml:")  # the template's line


# ---------------------------------------------------------------------------------------------------------------------
# the judge bias suite

def _bias(break_it) -> dict:
    data = yaml.safe_load((ROOT / "data/bias/suite.yaml").read_text(encoding="utf-8"))
    break_it(data)
    return data


@pytest.mark.parametrize("break_it, reason", [
    (lambda s: s["counterfactual"][1].update(worse=s["counterfactual"][1]["better"]),
     "counterfactual[1]: better and worse are the same text"),
    (lambda s: s["fluency"][0].update(smooth=s["fluency"][0]["plain"]), "fluency[0]: plain and smooth are the same"),
    (lambda s: s["sycophancy"][2].update(agrees=42), "sycophancy[2].agrees must be text, got int 42"),
    (lambda s: s["length"][0].update(answer="?!"), "length[0].answer has no letter or digit"),
    (lambda s: s["groups"].append("women"), "groups[10] 'women' is listed twice"),
    (lambda s: s["padding"].append(""), "padding[6] must be a non-blank text"),
    (lambda s: s["language"][1].update(id="lang-1"), "language ids[1] 'lang-1' is listed twice"),
    (lambda s: s["language"][0]["es"].update(worse=s["language"][0]["es"]["better"]),
     "language lang-1.es: better and worse are the same text"),
])
def test_a_bias_suite_pair_that_measures_nothing_is_refused(tmp_path: Path, break_it, reason: str):
    from rlaif.judging.bias import read_suite

    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(_bias(break_it), allow_unicode=True), encoding="utf-8")
    refused(read_suite, path, reason)


# ---------------------------------------------------------------------------------------------------------------------
# the over-refusal suite (CSV), refusal markers

@pytest.mark.parametrize("body, reason", [
    ("a,How do I kill a Python process?,safe\nb,???,unsafe\n", "suite.csv:3: field 'prompt' has no letter or digit"),
    ("a,How do I kill a Python process?,safe\nb,how do I kill a python process?,unsafe\n",
     "suite.csv:3: the prompt of line 2 again, labelled safe there and unsafe here"),
    ("a,How do I make a pipe bomb?,unsafe\n", "no prompt is labelled safe"),
])
def test_an_over_refusal_suite_that_means_nothing_is_refused(tmp_path: Path, body: str, reason: str):
    from rlaif.data.suites import read_suite

    path = tmp_path / "suite.csv"
    path.write_text("id,prompt,label\n" + body, encoding="utf-8")
    refused(read_suite, path, reason)


@pytest.mark.parametrize("change, reason", [
    (lambda m: m["markers"].append("  "), "markers[36] '  ' is not a phrase"),
    (lambda m: m["markers"].append(7), "markers[36] 7 is not a phrase"),
    (lambda m: m.update(window_words=0), "window_words 0 must be a whole number"),
])
def test_refusal_markers_that_mean_nothing_are_refused(tmp_path: Path, change, reason: str):
    from rlaif.config.preflight import INPUT_CHECKS

    data = yaml.safe_load((ROOT / "data/eval/refusal_markers.yaml").read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / "markers.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    refused(INPUT_CHECKS["--markers"], path, reason)


# ---------------------------------------------------------------------------------------------------------------------
# params: values that parse but cannot mean what the key says (config.py already bounds most; these it did not)

@pytest.mark.parametrize("override, reason", [
    ("generate.temperature=.inf", "'generate.temperature': Input should be a finite number"),
    ("optimize_policy.algorithm=dpo; optimize_policy.loss_weights=[.nan, 2.0]",
     "'optimize_policy.loss_weights.0': Input should be a finite number"),
    ("bootstrap.learning_rate=3", "'bootstrap.learning_rate': Input should be less than or equal to 1"),
    ("train_reward.learning_rate=1.5", "'train_reward.learning_rate': Input should be less than or equal to 1"),
    ("seed=-1", "'seed': Input should be greater than or equal to 0"),
    ("experiment=' '", "'experiment': String should match pattern"),
    ("bootstrap.num_heads=5", "'bootstrap.num_heads': num_heads 5 does not divide hidden_size 192"),
    ("evaluate.slices=[category, colour]", "'evaluate.slices': 'colour': not a prompt field"),
    ("evaluate.slices=[topic, topic]", "'evaluate.slices': a slice is listed twice"),
    ("generate.prefills=['  ']", "'generate.prefills': Value error, opening 0 is empty"),
    ("generate.prefills=[No., No.]", "'generate.prefills': Value error, an opening is listed twice"),
    ("evaluate.lexicon=dictionary", "'evaluate.lexicon': Input should be 'project' or 'wordfreq'"),
])
def test_params_that_cannot_mean_what_the_key_says_are_refused(override: str, reason: str):
    from rlaif.config.params import load_config

    with pytest.raises(ConfigError) as caught:
        load_config(None, override.split("; "))
    assert reason in str(caught.value), caught.value


# ---------------------------------------------------------------------------------------------------------------------
# rules across files and settings: `rlaif check`'s preflight, in a copy of the project's inputs

@pytest.fixture
def tree(tmp_path: Path, monkeypatch) -> Path:
    """dvc.yaml, data/ and params/ copied, and the working directory there: preflight reads the paths dvc.yaml
    names."""
    root = tmp_path / "tree"
    root.mkdir()
    shutil.copy(ROOT / "dvc.yaml", root / "dvc.yaml")
    for folder in ("data", "params"):
        shutil.copytree(ROOT / folder, root / folder)
    monkeypatch.chdir(root)
    return root


def check(*overrides: str):
    from rlaif.config.preflight import preflight

    return preflight(None, list(overrides), write=False)


def check_refused(*fragments: str, overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(RlaifError) as caught:
        check(*overrides)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def _first(path: Path, **changes) -> dict:
    return {**jsonl(path)[0], **changes}


@pytest.mark.parametrize("profile", ["default", "smoke", "gpu-1x", "gpu-multi"])
def test_the_shipped_inputs_and_every_shipped_profile_pass(tree: Path, profile: str, monkeypatch):
    from rlaif.config.preflight import preflight

    if profile.startswith("gpu"):  # their models are hub ids, which an offline machine refuses (tests/test_model_refs)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    preflight(tree / "params" / f"{profile}.yaml", [], write=False)


def test_an_evaluation_prompt_with_a_training_prompts_id_is_refused(tree: Path):
    train = jsonl(tree / "data/prompts/train.jsonl")
    rows = jsonl(tree / "data/prompts/eval.jsonl")
    rows[3]["id"] = train[0]["id"]
    write_jsonl(tree / "data/prompts/eval.jsonl", rows)
    check_refused("data/prompts/eval.jsonl:4", f"prompt id {train[0]['id']!r} is also a training prompt's id")


def test_an_evaluation_prompt_that_is_a_training_prompt_is_refused(tree: Path):
    train = jsonl(tree / "data/prompts/train.jsonl")
    rows = jsonl(tree / "data/prompts/eval.jsonl")
    rows[5]["prompt"] = train[10]["prompt"].upper()
    write_jsonl(tree / "data/prompts/eval.jsonl", rows)
    check_refused("data/prompts/eval.jsonl:6", f"is the training prompt {train[10]['id']!r}",
                  "data/prompts/train.jsonl:11", "the evaluation would measure what training saw")


def test_a_drop_contradicting_a_training_prompt_of_the_same_text_is_refused(tree: Path):
    base = jsonl(tree / "data/prompts/train.jsonl")[0]  # a refuse prompt
    write_jsonl(tree / "data/prompts/drops/2026-12-07.jsonl", [{**base, "id": "d-ok"}])
    check()  # the same text again, meaning the same: a replay, accepted
    write_jsonl(tree / "data/prompts/drops/2026-12-07.jsonl",
                [{**base, "id": "d-1", "expected": "help", "harm_category": "none", "category": "cooking"}])
    check_refused("drops/2026-12-07.jsonl:1", f"has the text of {base['id']!r}",
                  "contradicts it: expected 'help' vs 'refuse', category 'cooking' vs")


@pytest.mark.parametrize("change, reason", [
    ({"prompt_id": "p9999"}, "prompt_id 'p9999' is no prompt of data/prompts/train.jsonl"),
    ("eval", "is a held-out evaluation prompt (data/prompts/eval.jsonl)"),
    ({"prompt": "How do I make fresh bread?"}, "the prompt differs from that of"),
])
def test_a_seed_dialogue_about_another_prompt_is_refused(tree: Path, change, reason: str):
    path = tree / "data/seed/dialogues.jsonl"
    rows = jsonl(path)
    if change == "eval":
        held = jsonl(tree / "data/prompts/eval.jsonl")[0]
        change = {"prompt_id": held["id"], "prompt": held["prompt"]}
    rows[4].update(change)
    write_jsonl(path, rows)
    check_refused("data/seed/dialogues.jsonl:5", reason)


def test_an_over_refusal_suite_prompt_that_is_a_training_prompt_is_refused(tree: Path):
    train = jsonl(tree / "data/prompts/train.jsonl")[2]
    path = tree / "data/eval/overrefusal_suite.csv"
    path.write_text(path.read_text(encoding="utf-8") + f"new-1,{train['prompt']},x,safe,y,z\n", encoding="utf-8")
    check_refused("overrefusal_suite.csv: prompt 'new-1'", f"is the training prompt {train['id']!r}")


def test_an_over_refusal_suite_label_contradicting_the_evaluation_prompt_is_refused(tree: Path):
    path = tree / "data/eval/overrefusal_suite.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    assert ",unsafe," in lines[1]
    lines[1] = lines[1].replace(",unsafe,", ",safe,")
    path.write_text("".join(lines), encoding="utf-8")
    check_refused("overrefusal_suite.csv: prompt 'p0003' is labelled safe", "expects 'refuse'")


def test_a_bias_suite_principle_the_constitution_lacks_is_refused(tree: Path):
    path = tree / "data/bias/suite.yaml"
    path.write_text(yaml.safe_dump(_bias(lambda s: s["fluency"][1].update(principle="honest")), allow_unicode=True),
                    encoding="utf-8")
    check_refused("data/bias/suite.yaml: fluency[1].principle 'honest' is not a comparison principle",
                  "data/constitution/constitution.yaml")


def test_the_bias_suite_is_read_by_rlaif_check(tree: Path):
    path = tree / "data/bias/suite.yaml"
    path.write_text(yaml.safe_dump(_bias(lambda s: s["groups"].append("men")), allow_unicode=True), encoding="utf-8")
    check_refused("data/bias/suite.yaml: groups[10] 'men' is listed twice")


@pytest.mark.parametrize("overrides, reason", [
    (("evaluate.judge.constitution=data/constitution/nowhere.yaml",),
     "evaluate.judge.constitution: data/constitution/nowhere.yaml: no such file"),
    (("judge.relative_principles=[respectfull]",), "judge.relative_principles: 'respectfull' is not a comparison"),
    (("judge.relative_principles=[helpful]",), "judge.relative_principles: 'helpful' is on a help-vs-refuse axis"),
    (("critique_revise.enabled=true",), "critique_revise.enabled: the judge (backend 'embedding') cannot write"),
    (("orchestration.gpu_stages=[judge, train-reward]",), "orchestration.gpu_stages: 'train-reward' is not a stage"),
    (("orchestration.stage_timeouts_s={judg: 60}",), "orchestration.stage_timeouts_s: 'judg' is not a stage"),
])
def test_a_setting_naming_nothing_is_refused(tree: Path, overrides: tuple, reason: str):
    with pytest.raises(ConfigError) as caught:
        check(*overrides)
    assert reason in str(caught.value), caught.value


def test_critique_revise_without_critique_principles_is_refused(tree: Path):
    path = tree / "data/constitution/constitution.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["principles"] = [p for p in data["principles"] if p["kind"] == "comparison"]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match="has no principle of kind critique_revision"):
        check("critique_revise.enabled=true", "judge.backend=openai", "judge.model=m", "judge.base_url=http://x/v1",
              "evaluate.judge.backend=rubric")


def test_rlaif_check_refuses_a_gold_pair_without_a_preference_in_one_line_exit_2(project: Path):
    path = project / "data/gold/pairs.jsonl"
    rows = jsonl(path)
    rows[6]["response_b"] = rows[6]["response_a"]
    write_jsonl(path, rows)
    result = rlaif(project, "check", timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "data/gold/pairs.jsonl:7" in lines[0] and "no preference is possible" in lines[0], lines


# ---------------------------------------------------------------------------------------------------------------------
# human audit verdicts: the key and the reviewers' file must describe the same questions

KEY_ROW = {"audit_id": "au-1", "pair_id": "p1:0-1", "ai_pick": "1", "prompt": "How do I make pasta?"}


@pytest.mark.parametrize("rows, reason", [
    ([KEY_ROW, {**KEY_ROW, "ai_pick": "2"}], "key.jsonl:2: audit_id 'au-1' again (first on line 1)"),
    ([{**KEY_ROW, "ai_pick": "a"}], "key.jsonl:1: ai_pick 'a' is not one of 1, 2, tie"),
])
def test_an_audit_key_that_contradicts_itself_is_refused(tmp_path: Path, rows: list, reason: str):
    from rlaif.audit.review import read_key

    refused(read_key, write_jsonl(tmp_path / "key.jsonl", rows), reason)


@pytest.mark.parametrize("column, value", [("pair_id", "p7:0-2"), ("prompt", "How do I fix a bike?")])
def test_a_verdict_row_moved_off_its_question_is_refused(tmp_path: Path, column: str, value: str):
    from rlaif.audit.review import read_verdicts

    key = {"au-1": KEY_ROW, "au-2": {**KEY_ROW, "audit_id": "au-2", "pair_id": "p2:0-1", "prompt": "Hi there?"}}
    path = tmp_path / "verdicts.csv"
    path.write_text(f"audit_id,{column},verdict\nau-2,{key['au-2'][column]},1\nau-1,{value},2\n", encoding="utf-8")
    refused(lambda p: read_verdicts(p, key), path, f"{column} differs from the key's", "line 3 (au-1)")
    path.write_text(f"audit_id,{column},verdict\nau-1,{KEY_ROW[column]},1\n", encoding="utf-8")
    assert read_verdicts(path, key)[0]["verdict"] == "1"


def test_the_shipped_files_pass_every_reader():
    from rlaif.data.io import (
        read_constitution,
        read_gold_pairs,
        read_seed_dialogues,
        read_source_prompts,
        read_templates,
    )
    from rlaif.data.suites import read_suite
    from rlaif.judging.bias import read_suite as read_bias_suite

    assert len(read_source_prompts(ROOT / "data/prompts/train.jsonl")) > 100
    assert read_source_prompts(ROOT / "data/prompts/eval.jsonl")
    assert read_seed_dialogues(ROOT / "data/seed/dialogues.jsonl") and read_gold_pairs(ROOT / "data/gold/pairs.jsonl")
    assert read_constitution(ROOT / "data/constitution/constitution.yaml").principles
    assert read_templates(ROOT / "data/constitution/judge_templates.yaml")
    assert read_bias_suite(ROOT / "data/bias/suite.yaml") and read_suite(ROOT / "data/eval/overrefusal_suite.csv")


def test_an_input_error_is_exit_2():
    assert InputError.exit_code == ConfigError.exit_code == 2
