"""AI judges under a constitution: one contract (base.py), several backends, one factory."""

from rlaif.judging.judges.base import JudgeError, JudgeItem, Score, ScoreItem, Verdict
from rlaif.judging.judges.factory import build_judge

__all__ = ["JudgeError", "JudgeItem", "Score", "ScoreItem", "Verdict", "build_judge"]
