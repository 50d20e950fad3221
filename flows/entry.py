"""The `rlaif` command. A stage command (`rlaif exec STAGE`) started by a flow that keeps a warm server
(flows/warm.py) runs in a child of that server; every other command, and a stage without one, starts as usual."""

from __future__ import annotations

import os
import sys


def main() -> None:
    from flows.warm import WARM_ENV, run_warm

    address = os.environ.get(WARM_ENV)
    if address and sys.argv[1:2] == ["exec"]:
        code = run_warm(address, sys.argv[1:])
        if code is not None:
            sys.exit(code)
    from flows.cli import app

    app()
