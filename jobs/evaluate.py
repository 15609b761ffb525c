"""spark-submit entry: ``dmp evaluate``, uplift of a pack (--segment S --run-date D) after its attribution window."""

import sys

from dmp.cli import run


def main(argv: list[str] | None = None) -> int:
    return run(["evaluate", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
