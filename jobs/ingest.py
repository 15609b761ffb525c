"""spark-submit entry: ``dmp ingest``, raw behaviour logs -> bronze/events (+ quarantine), reconciled."""

import sys

from dmp.cli import run


def main(argv: list[str] | None = None) -> int:
    return run(["ingest", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
