"""spark-submit entry: ``dmp validate``, a table's Great Expectations suite on date partition(s); exit 1 if it fails."""

import sys

from dmp.cli import run


def main(argv: list[str] | None = None) -> int:
    return run(["validate", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
