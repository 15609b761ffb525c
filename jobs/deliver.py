"""spark-submit entry: gold/audience_packs -> channel destinations (files + manifest + _SUCCESS)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lake")
    parser.add_argument("--date")
    parser.add_argument("--from", dest="from_")
    parser.add_argument("--to")
    parser.add_argument("--segments", default="segments")
    parser.add_argument("--segment")
    parser.add_argument("--channel")
    parser.add_argument(
        "--skip-checks", action="store_true", help="accepted for symmetry; delivery has no GX gate"
    )
    args = parser.parse_args(argv)

    from dmp.contracts.dates import resolve_dates
    from dmp.contracts.errors import DmpError
    from dmp.spark.session import get_spark
    from dmp.steps.deliver import run_delivery, use_this_python_for_workers

    try:
        days = resolve_dates(args.date, args.from_, args.to)
        use_this_python_for_workers()
        spark = get_spark("dmp-deliver")
        for res in run_delivery(spark, args.lake, days, args.segments, args.segment, args.channel):
            rate = res.counts.get("match_rate")
            print(
                f"deliver {res.run_date} {res.segment} -> {res.channel}: {res.status} {res.mode} "
                f"rows={res.counts.get('delivered_rows')} match_rate={rate} {res.path} {res.message}"
            )
    except DmpError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
