"""A model's life after training: the registry's aliases and promotion, rounds, lineage, history, MLflow tracking,
the record of each run's environment, `rlaif reproduce`, and the one-run-at-a-time lock."""
