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
