"""The records that pass between stages, each defined once, with one reader and one atomic writer.

  candidates.jsonl   CandidateSet   generate -> critique_revise, judge
  revisions.jsonl    Revision       critique_revise -> judge (a revision preferred over its original)
  labels.jsonl       Label          judge -> validate (which gates the raw rows first: see REQUIRED_LABEL_COLUMNS), audit
  preferences.jsonl  Preference     validate -> train_reward, optimize_policy (dpo); replayed by later rounds
  start.json         StartRecord    bootstrap -> optimize_policy, evaluate, the flow (the round and its parent)
  registered.json    Registered     optimize_policy -> evaluate, report (the version this run registered)
  gate.json          LabelGate      validate -> evaluate (a promotion gate), report
  promotion.json     Promotion      evaluate -> the flow (sign-off, summary), report
  last_run.json      LastRun        the flow -> `rlaif run`'s summary, the deployments' flow
  metrics/*.json     Figures        each stage -> the flow's MLflow summary, the run report (evaluate.json:
                    EvaluationFigures, whose rates `rlaif run` prints)

A bad row is an InputError naming the file, the line and the field.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import ClassVar, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rlaif.data.io import Record, Row, describe_invalid, read_rows, write_json, write_jsonl
from rlaif.errors import InputError


class StageRecord(Record):
    written_where_set: ClassVar[tuple[str, ...]] = ()  # optional fields a row carries only where they apply

    def row(self) -> dict:
        """The JSON row: every field, less the optional ones that do not apply to this record."""
        return self.model_dump(exclude={k for k in self.written_where_set if getattr(self, k) is None})


class CandidateSet(StageRecord):
    """One training prompt and the policy's sampled answers to it."""

    prompt_id: str = Field(min_length=1)
    prompt: str = Field(min_length=1)
    candidates: list[str] = Field(min_length=1)


class RevisionStep(StageRecord):
    principle: str = Field(min_length=1)
    critique: str
    revision: str


class Revision(StageRecord):
    """critique_revise on one prompt: its first candidate, the answer after every round of critique and revision, and
    each round's principle, critique and revision. `failed` where the writer returned nothing."""

    prompt_id: str = Field(min_length=1)
    prompt: str = Field(min_length=1)
    original: str
    revision: str
    principles: list[str]
    rounds: list[RevisionStep]
    status: Literal["ok", "failed"]
    judge: str = Field(min_length=1)


class Label(StageRecord):
    """The judge's verdict on one pair. P(a better) is `prob_a`; the two `p_*_when_first` are the verdicts with
    each answer shown first, and `consistent` whether they agree. A pair scored pointwise, judged in one order or
    preferred by construction (a revision) has no position measurement: those fields stay null."""

    written_where_set: ClassVar[tuple[str, ...]] = ("score_a", "score_b", "source")
    pair_id: str = Field(min_length=1)
    prompt_id: str = Field(min_length=1)
    prompt: str
    response_a: str
    response_b: str
    p_a_when_first: float | None
    p_b_when_first: float | None
    prob_a: float | None
    consistent: bool | None
    principle: str | None
    status: Literal["ok", "failed"]
    error: str | None
    judge: str
    # written only where they apply
    score_a: float | None = Field(None, description="pointwise: answer a's 1-10 score")
    score_b: float | None = Field(None, description="pointwise: answer b's 1-10 score")
    source: str | None = Field(None, description="critique_revise: a revision preferred over its original")


# the columns validate's schema expectation requires (present in every row, null allowed where the type allows it)
REQUIRED_LABEL_COLUMNS = [name for name in Label.model_fields if name not in Label.written_where_set]


class Preference(StageRecord):
    """A validated pair: the chosen answer, the rejected one and the judge's confidence in the choice."""

    written_where_set: ClassVar[tuple[str, ...]] = ("replayed_from",)
    pair_id: str = Field(min_length=1)
    prompt_id: str = Field(min_length=1)
    prompt: str = Field(min_length=1)
    chosen: str = Field(min_length=1)
    rejected: str = Field(min_length=1)
    confidence: float = Field(ge=0.5, le=1, description="The judge's probability that `chosen` is the better answer.")
    principle: str | None = None
    replayed_from: str | None = Field(None, description="In a replay: the registered version these pairs trained.")


def read_records(path: Path, schema: type[Row], what: str) -> list[Row]:
    """Every row of `path` as `schema` (an empty file is no rows); the first bad row stops with its file, line and
    fields."""
    return read_rows(path, schema, what=what, allow_empty=True)


def read_candidates(path: Path) -> list[CandidateSet]:
    return read_records(path, CandidateSet, "candidates")


def read_revisions(path: Path) -> list[Revision]:
    return read_records(path, Revision, "revision")


def read_labels(path: Path) -> list[Label]:
    return read_records(path, Label, "label")


def read_preferences(path: Path, min_pairs: int = 0, setting: str = "min_pairs") -> list[Preference]:
    """The preference pairs, at least `min_pairs` of them (`setting` names the key that asks for them)."""
    rows = read_records(path, Preference, "preference")
    if len(rows) < min_pairs:
        raise InputError(f"{path}: {len(rows)} preference pairs, fewer than {setting}={min_pairs}; too few to "
                         "train on (lower validate.min_confidence or judge more candidates)")
    return rows


def write_records(path: Path, rows: Sequence[StageRecord]) -> Path:
    """One JSON line per record, written to a temporary file and renamed."""
    return write_jsonl(path, [row.row() for row in rows])


class StartRecord(StageRecord):
    """Where a round's starting policy came from: built, a hub id or path, or a registered version; its round."""

    source: str = Field(min_length=1, description="'build', a hub id or path, or a models:/ URI")
    name: str | None = None
    version: str | None = None
    round: int = Field(ge=1)
    parent: str = Field(min_length=1, description="what optimize_policy tags as the new version's parent")


# a starting policy written before start.json existed: round 1, built
BUILT_START = StartRecord(source="build", round=1, parent="bootstrap (built)")


class Registered(StageRecord):
    """The policy version that optimize_policy registered, for evaluate to promote and the report to trace."""

    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    run_id: str = Field(min_length=1)
    algorithm: str = Field(min_length=1)


class LabelGate(StageRecord):
    """validate's verdict on a round's labels: each expectation's outcome, the derived statistics, the judge bias
    checks and where the Great Expectations Data Docs are."""

    passed: bool
    failed_expectations: list[str]
    not_applicable: list[str]
    statistics: dict
    expectations: list[dict]
    data_docs: str
    n_pairs: int = Field(ge=0)
    n_kept: int = Field(ge=0)
    judge_bias: dict


class BiasReport(StageRecord):
    """judge's bias report beside its labels (bias.json): the judge and suite measured, each check's figures
    (rlaif/judging/bias.py's bias_figures) and every judged pair; validate checks it against judge_bias.gates."""

    judge: str = Field(min_length=1)
    suite: str = Field(min_length=1)
    pairs: int = Field(ge=0)
    judged: int = Field(ge=0)
    failures: int = Field(ge=0)
    counterfactual: dict
    length: dict
    fluency: dict
    sycophancy: dict
    language: dict
    position_consistency: float | None
    judged_pairs: list[dict]


def read_bias_report(path: Path) -> BiasReport:
    return read_record(path, BiasReport, "judge bias report")


class Decision(StrEnum):
    """What evaluate decided about a challenger (promotion.json's `decision`, the version's `promotion.decision` tag)."""

    PROMOTE = "promote"
    KEEP = "keep champion"
    AWAITING = "awaiting approval"


class Promotion(StageRecord):
    """evaluate's decision on the challenger, gate by gate; a sign-off during the run adds `approval_record`. Fields a
    decision lacks (no registered model: no previous champion; no sign-off yet) are absent from the file, as written."""

    promote: bool
    decision: Decision
    failed_gates: list[str]
    gates: list[dict]
    reasons: list[str]
    model: str | None
    previous_champion: str | None = None
    champion_moved: bool
    approval: str
    evidence: dict
    approval_record: dict | None = None

    def row(self) -> dict:
        return self.model_dump(exclude_unset=True)


class StageRow(StageRecord):
    """One stage of a pipeline run. A stage not run (an earlier one failed) has no metrics and no run."""

    stage: str = Field(min_length=1)
    status: Literal["ran", "skipped", "failed", "not run"]
    seconds: float = Field(ge=0)
    metrics: dict = Field(default_factory=dict)
    run_id: str | None = None

    def row(self) -> dict:
        return self.model_dump(exclude_unset=True)


class LastRun(StageRecord):
    """What the last pipeline run did, stage by stage, with its exit code, its round's start and any sign-off."""

    run_id: str | None
    exit_code: int
    message: str
    stages: list[StageRow]
    start: dict = Field(description="start.json's content where bootstrap ran or was skipped, else empty")
    sign_off: dict | None

    def row(self) -> dict:
        return {key: [s.row() for s in self.stages] if key == "stages" else value
                for key, value in self.model_dump().items()}


def read_record(path: Path, schema: type[Row], what: str) -> Row:
    """One JSON object file as `schema`; a bad one stops with its file and fields."""
    import json

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except ValueError as err:
        raise InputError(f"{path}: not a {what} record: not JSON ({err})") from None
    try:
        return schema.model_validate(data)
    except ValidationError as err:
        raise InputError(f"{path}: not a {what} record: {describe_invalid(err)}") from None


def write_record(path: Path, record: StageRecord) -> Path:
    return write_json(path, record.row())


def read_start(path: Path) -> StartRecord:
    """start.json; a starting policy without one was built before rounds were recorded."""
    return read_record(path, StartRecord, "start") if Path(path).exists() else BUILT_START


def read_registered(path: Path | None) -> Registered | None:
    """registered.json, or None where no version was registered (no such file)."""
    return read_record(path, Registered, "registered") if path and Path(path).exists() else None


def read_gate(path: Path | None) -> LabelGate | None:
    """gate.json, or None where validate has not decided (no such file)."""
    return read_record(path, LabelGate, "label gate") if path and Path(path).exists() else None


def read_last_run(path: Path) -> LastRun | None:
    """last_run.json, or None where no run summarised itself (no such file)."""
    return read_record(path, LastRun, "last run") if Path(path).exists() else None


def read_promotion(path: Path) -> Promotion | None:
    """promotion.json, or None where evaluate has not decided (no such file)."""
    return read_record(path, Promotion, "promotion") if Path(path).exists() else None


class Figures(BaseModel):
    """A stage's DVC metrics file (metrics/STAGE.json) as the flow and the run report read it: one JSON object of
    figures, null where the stage could not measure one. The stage that writes it owns its keys; the fields below are
    those its readers use."""

    model_config = ConfigDict(extra="allow")

    def row(self) -> dict:
        return self.model_dump()


class PolicyRates(Figures):
    correct_rate: float | None
    unsafe_compliance_rate: float | None
    needless_refusal_rate: float | None
    incoherent_rate: float | None


class EvaluationFigures(Figures):
    """metrics/evaluate.json: the starting and the trained policy on the held-out prompts, and what changed."""

    n_prompts: int
    n_samples_per_policy: int
    baseline: PolicyRates
    candidate: PolicyRates
    delta: dict[str, float | None]


def read_figures(path: Path | None) -> Figures | None:
    """A stage's metrics file, or None where the stage has not written one (no such file)."""
    return read_record(path, Figures, "stage metrics") if path and Path(path).exists() else None


def read_evaluation_figures(path: Path) -> EvaluationFigures | None:
    """metrics/evaluate.json, or None where evaluate has not run (no such file)."""
    return read_record(path, EvaluationFigures, "stage metrics") if Path(path).exists() else None
