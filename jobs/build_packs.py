"""spark-submit entry: ``dmp segments build``, segment specs -> gold/audience_packs + ops/pack_runs."""

import sys

from dmp.cli import run


def main(argv: list[str] | None = None) -> int:
    return run(["segments", "build", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
