"""The independent evaluation of a trained policy against its baseline: sampling both (`sampling`), rates per
category, suite and slice (`rates`), the win rate by the evaluation judge (`win_rate`), reward-hacking signals
(`reward_hacking`), the baseline, the promotion decision and the metrics (`decision`), plots and the report."""
