"""`python -m flows ...` is the `rlaif` command (what `accelerate launch -m flows` starts in each process)."""

from flows.cli import app

app()
