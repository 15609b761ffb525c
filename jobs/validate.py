"""spark-submit entry: run a table's Great Expectations suite on date partition(s); exit 1 if it fails."""

from __future__ import annotations

import argparse
import sys

from dmp.contracts import tables


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lake")
    parser.add_argument(
        "--table", required=True, choices=[tables.EVENTS, tables.USER_DAILY, tables.USER_TAGS]
    )
    parser.add_argument("--date")
    parser.add_argument("--from", dest="from_")
    parser.add_argument("--to")
    parser.add_argument("--skip-checks", action="store_true", help="accepted for symmetry; does nothing")
    args = parser.parse_args(argv)

    from dmp.contracts.dates import resolve_dates
    from dmp.contracts.errors import DmpError
    from dmp.contracts.tables import resolve_lake
    from dmp.spark.session import get_spark
    from dmp.steps.quality import validate_table

    try:
        days = resolve_dates(args.date, args.from_, args.to)
        rows, suite = validate_table(get_spark("dmp-validate"), resolve_lake(args.lake), args.table, days)
        print(f"passed suite {suite} on {args.table} ({rows} rows)")
    except DmpError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
