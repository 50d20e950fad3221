"""The label gate: the Great Expectations suite over the judge's labels, the judge bias gates, and the preference
filter that turns labels that pass into the training set."""

from rlaif.gate.labels_gate import MIN_PAIRS_NAME, validate_labels

__all__ = ["MIN_PAIRS_NAME", "validate_labels"]
