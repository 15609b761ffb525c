"""spark-submit entry: bronze/events -> silver/user_daily for --date D or --from D1 --to D2."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lake")
    parser.add_argument("--date")
    parser.add_argument("--from", dest="from_")
    parser.add_argument("--to")
    parser.add_argument("--skip-checks", action="store_true")
    args = parser.parse_args(argv)

    from dmp.contracts.dates import resolve_dates
    from dmp.contracts.errors import DmpError
    from dmp.contracts.tables import resolve_lake
    from dmp.spark.session import get_spark
    from dmp.steps.aggregate import aggregate_days

    try:
        days = resolve_dates(args.date, args.from_, args.to)
        spark = get_spark("dmp-aggregate")
        for res in aggregate_days(spark, resolve_lake(args.lake), days, skip_checks=args.skip_checks):
            print(f"aggregate {res.day}: {res.events} events -> {res.rows} user_daily rows")
    except DmpError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
