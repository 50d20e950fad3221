"""The label gate (rlaif/gate/), run against real Great Expectations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlaif.config import ValidateConfig
from rlaif.errors import GateFailed, InputError
from rlaif.gate import MIN_PAIRS_NAME, validate_labels

PAIRS = [(0, 1), (0, 2), (1, 2)]


def label(
    prompt_id: str,
    i: int,
    j: int,
    p_a_when_first: float | None,
    p_b_when_first: float | None,
    **overrides,
) -> dict:
    """One labels.jsonl row as the judge writes it, prob_a and consistent derived from the two orders."""
    if p_a_when_first is None:
        prob_a, consistent = None, None
    elif p_b_when_first is None:
        prob_a, consistent = p_a_when_first, None
    else:
        prob_a = (p_a_when_first + (1 - p_b_when_first)) / 2
        consistent = (p_a_when_first > 0.5) == (p_b_when_first < 0.5)
    row = {
        "pair_id": f"{prompt_id}:{i}-{j}",
        "prompt_id": prompt_id,
        "prompt": f"question {prompt_id}",
        "response_a": f"answer {i} to {prompt_id}",
        "response_b": f"answer {j} to {prompt_id}",
        "p_a_when_first": p_a_when_first,
        "p_b_when_first": p_b_when_first,
        "prob_a": prob_a,
        "consistent": consistent,
        "principle": "harmless",
        "status": "ok",
        "error": None,
        "judge": "embedding:test",
    }
    row.update(overrides)
    return row


def a_wins(p: float) -> tuple[float, float]:
    """Orders of a consistent judgement where a wins with probability p."""
    return p, 1 - p


def b_wins(p: float) -> tuple[float, float]:
    return 1 - p, p


def good_labels() -> list[dict]:
    """35 pairs: balanced, consistent, one failed, one inconsistent, one unconfident."""
    rows = [
        # p0: confidences 0.9 (a), 0.9 (b), 0.8 -> the 0.8 one is dropped by the cap of 2
        label("p0", 0, 1, *a_wins(0.9)),
        label("p0", 0, 2, *b_wins(0.9)),
        label("p0", 1, 2, *a_wins(0.8)),
        # p1: three ties at 0.8 -> the two smallest pair_ids are kept
        label("p1", 1, 2, *b_wins(0.8)),
        label("p1", 0, 2, *a_wins(0.8)),
        label("p1", 0, 1, *b_wins(0.8)),
        # p2: one unconfident (0.55 < 0.6), one inconsistent, one failed
        label("p2", 0, 1, *a_wins(0.55)),
        label("p2", 0, 2, 0.9, 0.8),
        label("p2", 1, 2, None, None, status="failed", error="judge timed out"),
    ]
    for n in range(3, 13):
        for k, (i, j) in enumerate(PAIRS[: 3 if n % 3 else 2]):
            orders = a_wins(0.7 + 0.02 * k) if (n + k) % 2 else b_wins(0.75)
            rows.append(label(f"p{n}", i, j, *orders))
    return rows


def write_labels(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def read_preferences(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "out", tmp_path / "reports"


CFG = ValidateConfig(min_pairs=10, max_pairs_per_prompt=2, min_confidence=0.6)


def test_good_labels_pass_and_write_preferences(tmp_path: Path, dirs: tuple[Path, Path]) -> None:
    out_dir, report_dir = dirs
    rows = good_labels()
    summary = validate_labels(CFG, write_labels(tmp_path / "labels.jsonl", rows), out_dir, report_dir)

    assert summary["passed"] is True
    assert summary["failed_expectations"] == []
    assert summary["n_pairs"] == len(rows)
    gate = json.loads((report_dir / "gate.json").read_text())
    assert summary["validation_page"]  # the page's address carries a time: MLflow gets it, the gate record does not
    assert gate == {k: v for k, v in summary.items() if k != "validation_page"}
    assert Path(gate["data_docs"]) == report_dir / "data_docs" / "index.html"
    assert Path(gate["data_docs"]).is_file()
    names = [e["name"] for e in gate["expectations"]]
    assert any(n.startswith("position consistency rate") for n in names)
    assert any(n.startswith("first-shown answer win rate") for n in names)
    assert "response_a differs from response_b" in names

    prefs = read_preferences(out_dir / "preferences.jsonl")
    assert len(prefs) == summary["n_kept"]
    by_id = {p["pair_id"]: p for p in prefs}
    assert set(prefs[0]) == {"pair_id", "prompt_id", "prompt", "chosen", "rejected", "confidence", "principle"}

    # chosen/rejected/confidence follow prob_a
    assert by_id["p0:0-1"]["chosen"] == "answer 0 to p0"
    assert by_id["p0:0-1"]["rejected"] == "answer 1 to p0"
    assert by_id["p0:0-1"]["confidence"] == pytest.approx(0.9)
    assert by_id["p0:0-2"]["chosen"] == "answer 2 to p0"
    assert by_id["p0:0-2"]["rejected"] == "answer 0 to p0"
    assert by_id["p0:0-2"]["confidence"] == pytest.approx(0.9)
    assert by_id["p0:0-2"]["principle"] == "harmless"
    # per-prompt cap keeps the most confident, ties broken by pair_id
    assert "p0:1-2" not in by_id
    assert sorted(p for p in by_id if p.startswith("p1:")) == ["p1:0-1", "p1:0-2"]
    # unconfident, inconsistent and failed pairs are dropped
    assert not any(p.startswith("p2:") for p in by_id)
    counts: dict[str, int] = {}
    for p in prefs:
        counts[p["prompt_id"]] = counts.get(p["prompt_id"], 0) + 1
    assert max(counts.values()) <= CFG.max_pairs_per_prompt
    assert all(p["confidence"] >= CFG.min_confidence for p in prefs)

    stats = json.loads((out_dir / "stats.json").read_text())
    assert stats["n_pairs"] == len(rows)
    assert stats["n_failed"] == 1
    assert stats["n_ok"] == len(rows) - 1
    assert stats["n_kept"] == len(prefs)
    assert stats["consistency_rate"] == pytest.approx((len(rows) - 2) / (len(rows) - 1), abs=1e-6)
    # every consistent pair has one first-shown win in two orders; the inconsistent one has two
    n_ok = len(rows) - 1
    assert stats["first_wins_rate"] == pytest.approx((n_ok + 1) / (2 * n_ok), abs=1e-6)


def test_first_shown_always_wins_fails_gate(tmp_path: Path, dirs: tuple[Path, Path]) -> None:
    out_dir, report_dir = dirs
    rows = [label(f"p{n}", i, j, 0.9, 0.9) for n in range(10) for i, j in PAIRS]
    stale = out_dir / "preferences.jsonl"
    stale.parent.mkdir(parents=True)
    stale.write_text('{"pair_id": "old"}\n')

    with pytest.raises(GateFailed) as info:
        validate_labels(CFG, write_labels(tmp_path / "labels.jsonl", rows), out_dir, report_dir)

    message = str(info.value)
    assert "position consistency rate" in message
    assert "first-shown answer win rate" in message
    assert "observed: 0.0" in message and "observed: 1.0" in message
    index = report_dir / "data_docs" / "index.html"
    assert str(index) in message
    assert str(report_dir / "gate.json") in message
    assert index.is_file()
    assert list((report_dir / "data_docs" / "validations").rglob("*.html"))

    gate = json.loads((report_dir / "gate.json").read_text())
    assert gate["passed"] is False
    assert gate["n_kept"] == 0
    failed = gate["failed_expectations"]
    assert any(n.startswith("position consistency rate") for n in failed)
    assert any(n.startswith("first-shown answer win rate") for n in failed)
    assert gate["statistics"]["first_wins_rate"] == 1.0
    assert gate["statistics"]["consistency_rate"] == 0.0
    assert not stale.exists()
    assert not (out_dir / "stats.json").exists()


def test_pointwise_labels_say_position_checks_do_not_apply(tmp_path: Path, dirs: tuple[Path, Path]) -> None:
    """Pointwise scores have no first-shown answer: the gate reports both position checks "not applicable" (not
    "passed", and not a fabricated consistency of 1.0), and keeps confident pairs."""
    out_dir, report_dir = dirs
    rows = [label(f"p{n}", i, j, None, None, prob_a=0.8 if (n + i) % 2 else 0.15, score_a=7.0, score_b=4.0)
            for n in range(10) for i, j in PAIRS]
    summary = validate_labels(CFG, write_labels(tmp_path / "labels.jsonl", rows), out_dir, report_dir)

    assert summary["passed"] is True
    by_name = {o["name"]: o for o in summary["expectations"]}
    skipped = [n for n in by_name if n.startswith(("position consistency rate", "first-shown answer win rate"))]
    assert len(skipped) == 2 and sorted(summary["not_applicable"]) == sorted(skipped)
    for name in skipped:
        assert by_name[name]["applicable"] is False and "not applicable" in by_name[name]["observed"]
    assert "order-invariant judge" in by_name[skipped[1]]["observed"]
    assert summary["statistics"]["consistency_rate"] is None
    assert summary["statistics"]["n_ordered_judgements"] == 0
    assert summary["statistics"]["expectations"]["evaluated"] == len(by_name) - 2  # the two were not run
    assert summary["n_kept"] == 20  # 10 prompts, 2 per prompt, all confident


def test_identical_responses_fail_gate(tmp_path: Path, dirs: tuple[Path, Path]) -> None:
    out_dir, report_dir = dirs
    rows = good_labels()
    rows[5]["response_b"] = rows[5]["response_a"]

    with pytest.raises(GateFailed, match="response_a differs from response_b") as info:
        validate_labels(CFG, write_labels(tmp_path / "labels.jsonl", rows), out_dir, report_dir)

    assert rows[5]["pair_id"] in str(info.value)
    gate = json.loads((report_dir / "gate.json").read_text())
    assert gate["passed"] is False
    assert gate["failed_expectations"] == ["response_a differs from response_b"]
    assert not (out_dir / "preferences.jsonl").exists()


def test_too_many_failed_judgements_fail_gate(tmp_path: Path, dirs: tuple[Path, Path]) -> None:
    out_dir, report_dir = dirs
    rows = good_labels()
    for row in rows[-5:]:
        row.update(status="failed", error="no score", p_a_when_first=None, p_b_when_first=None, prob_a=None, consistent=None)

    with pytest.raises(GateFailed, match="failed fraction at most 0.05"):
        validate_labels(CFG, write_labels(tmp_path / "labels.jsonl", rows), out_dir, report_dir)
    assert not (out_dir / "preferences.jsonl").exists()


def test_too_few_pairs_after_filtering_fail_gate(tmp_path: Path, dirs: tuple[Path, Path]) -> None:
    out_dir, report_dir = dirs
    cfg = ValidateConfig(min_pairs=100, max_pairs_per_prompt=2, min_confidence=0.6)

    with pytest.raises(GateFailed, match="at least 100") as info:
        validate_labels(cfg, write_labels(tmp_path / "labels.jsonl", good_labels()), out_dir, report_dir)

    assert MIN_PAIRS_NAME in str(info.value)
    gate = json.loads((report_dir / "gate.json").read_text())
    assert gate["passed"] is False
    assert gate["failed_expectations"] == [MIN_PAIRS_NAME]
    assert gate["n_kept"] == 0
    assert 0 < gate["statistics"]["n_kept_after_filters"] < 100
    assert (report_dir / "data_docs" / "index.html").is_file()
    assert not (out_dir / "preferences.jsonl").exists()
    assert not (out_dir / "stats.json").exists()


def test_malformed_line_is_input_error(tmp_path: Path, dirs: tuple[Path, Path]) -> None:
    out_dir, report_dir = dirs
    path = tmp_path / "labels.jsonl"
    good = "".join(json.dumps(row) + "\n" for row in good_labels()[:2])
    path.write_text(good + '{"pair_id": "p9:0-1", "prompt_id": \n', encoding="utf-8")

    with pytest.raises(InputError, match=r"labels\.jsonl:3: not valid JSON"):
        validate_labels(CFG, path, out_dir, report_dir)
    assert not (out_dir / "preferences.jsonl").exists()
    assert not (report_dir / "gate.json").exists()
