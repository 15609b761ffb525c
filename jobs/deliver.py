"""spark-submit entry: ``dmp deliver``, gold/audience_packs -> channel destinations (files + manifest + _SUCCESS)."""

import sys

from dmp.cli import run


def main(argv: list[str] | None = None) -> int:
    return run(["deliver", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
