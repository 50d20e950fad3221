"""`python -m rlaif ...` is the `rlaif` command (what `accelerate launch -m rlaif` starts in each process)."""

from rlaif.cli import app

app()
