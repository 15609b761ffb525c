"""spark-submit entry: silver/user_daily -> gold/user_tags (incremental) for --date D or --from/--to."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lake")
    parser.add_argument("--date")
    parser.add_argument("--from", dest="from_")
    parser.add_argument("--to")
    parser.add_argument("--config", help="YAML tag config (dmp/tag_config.py)")
    parser.add_argument(
        "--full", action="store_true", help="rebuild from history instead of yesterday's state"
    )
    parser.add_argument("--skip-checks", action="store_true")
    args = parser.parse_args(argv)

    from dmp.contracts.dates import resolve_dates
    from dmp.contracts.errors import DmpError
    from dmp.contracts.tables import resolve_lake
    from dmp.contracts.tag_config import load_tag_config
    from dmp.spark.session import get_spark
    from dmp.steps.tags import run_tags

    try:
        days = resolve_dates(args.date, args.from_, args.to)
        cfg = load_tag_config(args.config)
        spark = get_spark("dmp-tags")
        for day in days:
            res = run_tags(
                spark, resolve_lake(args.lake), day, cfg, full=args.full, skip_checks=args.skip_checks
            )
            print(f"tags {day}: {res.users} users, {res.mode} ({res.reason})")
    except DmpError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
