"""``python -m dmp.cli`` and the spark-submit application for chained commands (``a ::: b``)."""

import sys
from pathlib import Path

# Run as a file (spark-submit .../dmp/cli/__main__.py), Python puts this folder first on sys.path,
# where ingest.py, tables.py, ... would shadow top-level modules of the same names: drop it.
if sys.path and sys.path[0] and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

from dmp.cli import run_commands  # noqa: E402 - after the sys.path fix above

if __name__ == "__main__":
    sys.exit(run_commands(sys.argv[1:]))
