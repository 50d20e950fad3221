"""The `rlaif` command. With a warm server's address in its environment (flows/warm.py: a stage started by a flow,
or a command started by the tests), a command runs in a child of that server; `rlaif run` always starts as usual
(it starts its own warm server and Prefect's), and so does every command when no server is there to use."""

from __future__ import annotations

import os
import sys


def main() -> None:
    from flows.warm import WARM_ENV, run_warm

    address = os.environ.get(WARM_ENV)
    if address and sys.argv[1:2] not in (["run"], []):
        code = run_warm(address, sys.argv[1:])
        if code is not None:
            sys.exit(code)
    from flows.cli import app

    app()
