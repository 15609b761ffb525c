"""spark-submit entry: ``dmp tags``, silver/user_daily -> gold/user_tags (incremental) for --date D or --from/--to."""

import sys

from dmp.cli import run


def main(argv: list[str] | None = None) -> int:
    return run(["tags", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
