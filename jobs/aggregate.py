"""spark-submit entry: ``dmp aggregate``, bronze/events -> silver/user_daily for --date D or --from D1 --to D2."""

import sys

from dmp.cli import run


def main(argv: list[str] | None = None) -> int:
    return run(["aggregate", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
