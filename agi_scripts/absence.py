"""Classic AGI entry point of the absence line (the same flow as FastAGI ``/absence``).

Asterisk starts one process per call, e.g. from ``dialplans/absence-classic.conf``::

    AGI(${RENRAKU_PYTHON},${RENRAKU_SRC}/agi_scripts/absence.py[,settings.toml])

The interpreter is named explicitly so the project's virtualenv (with pyst2, SQLAlchemy...)
runs the script whatever ``python3`` is on Asterisk's PATH. Settings come from the TOML
file given as the argument, else ``RENRAKU_CONFIG`` / ``RENRAKU_*`` in the environment.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

# Run by path, the repository root is not on sys.path unless the package is installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ivr.absence_flow import run_classic
from ivr.classic_agi import run


def main(argv: list[str]) -> int:
    # stderr of a classic AGI script lands in Asterisk's log.
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="renraku absence.py: %(levelname)s %(name)s: %(message)s")
    return run(lambda channel: run_classic(channel, argv[1:]))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
