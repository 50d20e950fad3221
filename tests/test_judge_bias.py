"""The judge bias suite (rlaif/judging/bias.py, `rlaif judge-bias`) on the real embedded judge, and on judges made
biased here on purpose: each bias is caught by its gate, and the real judge passes the gates it should pass."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import BIN, ROOT, cli_env

from rlaif.config import JudgeBiasGates, PipelineConfig
from rlaif.data.io import read_constitution, read_templates
from rlaif.errors import InputError
from rlaif.judging.bias import check, read_suite
from rlaif.judging.labelling import judge_bias_suite

SUITE = ROOT / "data/bias/suite.yaml"


@pytest.fixture(scope="module")
def embedding_judge():
    from rlaif.judging.judges import build_judge

    cfg = PipelineConfig()
    return cfg.judge, build_judge(cfg.judge, read_constitution(ROOT / "data/constitution/constitution.yaml"),
                                  read_templates(ROOT / "data/constitution/judge_templates.yaml"))


class Skewed:
    """A real judge with a bias added: `skew(item, p_first)` returns the verdict it gives instead. Not
    order-invariant, so it is asked in both orders like a generative judge."""

    order_invariant = False

    def __init__(self, inner, skew):
        self.inner, self.skew = inner, skew
        self.backend, self.model_name, self.judge_id = "skewed", inner.model_name, f"skewed:{inner.judge_id}"

    def judge(self, items):
        return [dataclasses.replace(v, p_first=self.skew(item, v.p_first)) for item, v in
                zip(items, self.inner.judge(items))]


def longer_wins(item, p_first: float) -> float:
    """Rewards length: the longer answer gains 0.3."""
    bonus = 0.3 if len(item.first) > len(item.second) else -0.3 if len(item.first) < len(item.second) else 0.0
    return min(1.0, max(0.0, p_first + bonus))


def against_two_groups(item, p_first: float) -> float:
    """Prefers the other answer whenever the prompt names women or Muslims."""
    return 1.0 - p_first if any(g in item.prompt for g in ("women", "Muslims")) else p_first


def gates_of(figures: dict) -> dict[str, bool]:
    return {row["gate"]: row["passed"] for row in check(figures, JudgeBiasGates())}


def test_the_embedded_judge_figures_are_those_of_its_verdicts(embedding_judge):
    settings, judge = embedding_judge
    figures, judged = judge_bias_suite(settings, judge, read_suite(SUITE))
    assert figures["judged"] == figures["pairs"] == len(judged) > 100 and figures["failures"] == 0
    wins = lambda check: [row["prob_a"] > 0.5 for row in judged if row["check"] == check]  # noqa: E731
    assert figures["length"]["padded_win_rate"] == pytest.approx(sum(wins("length")) / len(wins("length")))
    assert figures["sycophancy"]["agree_win_rate"] == pytest.approx(sum(wins("sycophancy")) / len(wins("sycophancy")))
    english = {row["item"]: row["prob_a"] > 0.5 for row in judged if row.get("language") == "en"}
    spanish = [(row["prob_a"] > 0.5) == english[row["item"]] for row in judged if row.get("language") == "es"]
    assert figures["language"]["es"]["agreement_with_english"] == pytest.approx(sum(spanish) / len(spanish))
    assert figures["counterfactual"]["groups"] == len(read_suite(SUITE)["groups"]) >= 3
    assert figures["position_consistency"] is None  # order-invariant: asked once per pair, nothing to compare
    passed = gates_of(figures)
    assert passed["max_group_flip_rate"] and passed["max_padded_win_rate"] and passed["max_group_shift"]


def test_a_judge_that_rewards_length_is_caught(embedding_judge):
    settings, judge = embedding_judge
    figures, _ = judge_bias_suite(settings, Skewed(judge, longer_wins), read_suite(SUITE))
    plain, _ = judge_bias_suite(settings, judge, read_suite(SUITE))
    assert figures["length"]["padded_win_rate"] > plain["length"]["padded_win_rate"]
    assert figures["length"]["padded_win_rate"] > JudgeBiasGates().max_padded_win_rate
    assert not gates_of(figures)["max_padded_win_rate"]
    assert figures["position_consistency"] == 1.0  # asked in both orders, and the bonus follows the answer


def test_a_judge_that_treats_two_groups_differently_is_caught(embedding_judge):
    settings, judge = embedding_judge
    figures, _ = judge_bias_suite(settings, Skewed(judge, against_two_groups), read_suite(SUITE))
    by_group = figures["counterfactual"]["by_group"]
    assert by_group["women"]["flips"] == by_group["Muslims"]["flips"] == figures["counterfactual"]["pairs"]
    assert by_group["women"]["mean_shift"] < -0.1 and by_group["men"]["flips"] == 0
    assert figures["counterfactual"]["flip_rate"] == pytest.approx(2 / len(by_group))
    passed = gates_of(figures)
    assert not passed["max_group_flip_rate"] and not passed["max_group_shift"]


@pytest.mark.slow
def test_rlaif_judge_bias_reports_and_exits_3_on_a_failed_check(tmp_path: Path):
    """The default params leave the sycophancy check off for the encoder judge (params/default.yaml says why);
    switched on, the same judge fails it."""
    env = cli_env(ROOT)
    default = subprocess.run([str(BIN / "rlaif"), "judge-bias", "--json", "--out", str(tmp_path / "bias.json")],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert default.returncode == 0, default.stderr
    shown = json.loads(default.stdout)
    assert shown["passed"] and "max_sycophancy_win_rate" not in {g["gate"] for g in shown["gates"]}
    assert shown["sycophancy"]["agree_win_rate"] > 0.5  # measured and reported all the same
    assert len(json.loads((tmp_path / "bias.json").read_text())["judged_pairs"]) == shown["pairs"]
    strict = subprocess.run([str(BIN / "rlaif"), "judge-bias", "--set", "judge_bias.gates.max_sycophancy_win_rate=0.5"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert strict.returncode == 3, strict.stdout + strict.stderr
    assert "failed the bias checks max_sycophancy_win_rate" in strict.stderr
    assert "answers agreeing with a mistaken premise preferred to correcting it" in strict.stdout and "FAILED" in strict.stdout


@pytest.mark.parametrize("damage, named", [
    (lambda s: s.pop("sycophancy"), "'sycophancy' needs a list of pairs"),
    (lambda s: s["length"][2].pop("answer"), "length[2] lacks answer"),
    (lambda s: s["counterfactual"][0].update(prompt="no group here", better="fine", worse="bad"), "names no {group}"),
    (lambda s: s["language"][1]["es"].pop("worse"), "language lang-2.es needs prompt, better and worse"),
])
def test_a_damaged_suite_names_the_section_and_field(tmp_path: Path, damage, named):
    suite = yaml.safe_load(SUITE.read_text())
    damage(suite)
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    with pytest.raises(InputError, match=named.replace("{", r"\{").replace("}", r"\}").replace("[", r"\[")
                       .replace("]", r"\]").replace("'", "'")):
        read_suite(path)
