"""Calibration of pairwise probabilities: expected calibration error and a reliability plot.

A pairwise model gives p = P(outcome), e.g. P(chosen better) = sigmoid(r_chosen - r_rejected), and
the label says whether the outcome happened. The orientation of a pair is arbitrary (chosen/rejected
or a/b), so calibration is measured on the side the model picks: confidence = max(p, 1 - p), correct =
the picked side is the labelled one. A tie (p = 0.5) picks "not the outcome", so it counts as wrong,
as in a pair accuracy that needs r_chosen > r_rejected. Confidences lie in [0.5, 1]; the bins split
that range into equal widths (10 bins: 0.50-0.55, ..., 0.95-1.00, the last one closed).

ECE = sum over bins of (bin count / total) * |accuracy in bin - mean confidence in bin|.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CalibrationBin:
    lower: float
    upper: float
    count: int
    mean_confidence: float  # nan when the bin is empty
    accuracy: float  # nan when the bin is empty


def _confidence_and_correct(probs: Sequence[float], labels: Sequence[bool]) -> list[tuple[float, bool]]:
    if len(probs) != len(labels):
        raise ValueError(f"{len(probs)} probabilities but {len(labels)} labels")
    out = []
    for p, label in zip(probs, labels):
        p = float(p)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"probability {p} is outside [0, 1]")
        picked = p > 0.5
        out.append((max(p, 1.0 - p), picked == bool(label)))
    return out


def reliability_bins(probs: Sequence[float], labels: Sequence[bool], n_bins: int = 10) -> list[CalibrationBin]:
    """Equal-width bins of confidence = max(p, 1 - p) over [0.5, 1], with their accuracy and mean confidence."""
    if n_bins < 1:
        raise ValueError("n_bins must be at least 1")
    width = 0.5 / n_bins
    members: list[list[tuple[float, bool]]] = [[] for _ in range(n_bins)]
    for conf, correct in _confidence_and_correct(probs, labels):
        # a confidence on an edge belongs to the bin above it (0.7 - 0.5 is 0.19999... in binary floats)
        index = math.floor((conf - 0.5) / width + 1e-9)
        members[min(index, n_bins - 1)].append((conf, correct))
    bins = []
    for i, group in enumerate(members):
        n = len(group)
        bins.append(CalibrationBin(
            lower=0.5 + i * width,
            upper=0.5 + (i + 1) * width,
            count=n,
            mean_confidence=sum(c for c, _ in group) / n if n else float("nan"),
            accuracy=sum(ok for _, ok in group) / n if n else float("nan"),
        ))
    return bins


def ece_from_bins(bins: Sequence[CalibrationBin]) -> float:
    total = sum(b.count for b in bins)
    if total == 0:
        return float("nan")
    return sum(b.count / total * abs(b.accuracy - b.mean_confidence) for b in bins if b.count)


def expected_calibration_error(probs: Sequence[float], labels: Sequence[bool], n_bins: int = 10) -> float:
    """ECE over `n_bins` equal-width confidence bins; nan for no pairs."""
    return ece_from_bins(reliability_bins(probs, labels, n_bins))


def brier_score(probs: Sequence[float], labels: Sequence[bool]) -> float:
    """Mean squared error of p against the 0/1 label; nan for no pairs."""
    if len(probs) != len(labels):
        raise ValueError(f"{len(probs)} probabilities but {len(labels)} labels")
    if not probs:
        return float("nan")
    return sum((float(p) - float(bool(y))) ** 2 for p, y in zip(probs, labels)) / len(probs)


def plot_reliability(bins: Sequence[CalibrationBin], path: Path, title: str) -> Path:
    """Accuracy per confidence bin (bars, pair count above each), the mean confidence in each bin (dots)
    and the diagonal a calibrated model follows; ECE in the title. Written as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    lows = [b.lower for b in bins]
    widths = [b.upper - b.lower for b in bins]
    filled = [b for b in bins if b.count]
    ax.bar(lows, [b.accuracy if b.count else 0.0 for b in bins], width=widths, align="edge",
           edgecolor="black", color="tab:blue", alpha=0.7, label="accuracy")
    ax.plot([b.mean_confidence for b in filled], [b.mean_confidence for b in filled], "o", color="tab:red",
            markersize=4, label="mean confidence")
    ax.plot([0.5, 1.0], [0.5, 1.0], "--", color="gray", label="calibrated")
    for b in bins:
        height = b.accuracy if b.count else 0.0
        ax.annotate(str(b.count), (b.lower + (b.upper - b.lower) / 2, height), textcoords="offset points",
                    xytext=(0, 2), ha="center", fontsize=7)
    ax.set_xlim(0.5, 1.0)
    ax.set_ylim(0.0, 1.08)
    ax.set_xlabel("confidence max(p, 1 - p)")
    ax.set_ylabel("accuracy (numbers: pairs in bin)")
    total = sum(b.count for b in bins)
    ax.set_title(f"{title}\nECE {ece_from_bins(bins):.3f}, {total} pairs", fontsize=10)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, fontsize=8, frameon=False)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path
