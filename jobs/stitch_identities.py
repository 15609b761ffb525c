"""spark-submit entry: ``dmp identities stitch``, silver/identities -> silver/persons (+ person identifiers, violations)."""

import sys

from dmp.cli import run


def main(argv: list[str] | None = None) -> int:
    return run(["identities", "stitch", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
