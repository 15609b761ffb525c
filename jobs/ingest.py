"""spark-submit entry: raw behaviour logs -> bronze/events (+ quarantine), reconciled.

    spark-submit --packages io.delta:delta-spark_4.2_2.13:4.4.0 jobs/ingest.py \
        --source DIR --format jsonl --lake L (--date D | --from D1 --to D2) [--skip-checks]
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source", required=True)
    parser.add_argument("--format", dest="fmt", choices=("jsonl", "parquet", "taobao"), default="jsonl")
    parser.add_argument("--lake")
    parser.add_argument("--date")
    parser.add_argument("--from", dest="from_")
    parser.add_argument("--to")
    parser.add_argument("--skip-checks", action="store_true")
    args = parser.parse_args(argv)

    from rich.console import Console

    from dmp.contracts.dates import resolve_dates
    from dmp.contracts.errors import DmpError
    from dmp.contracts.tables import resolve_lake
    from dmp.spark.session import get_spark
    from dmp.steps.ingest import reconciliation_table, run_ingest

    try:
        days = resolve_dates(args.date, args.from_, args.to) if (args.date or args.from_ or args.to) else None
        spark = get_spark("dmp-ingest")
        result = run_ingest(
            spark, resolve_lake(args.lake), args.source, args.fmt, days, skip_checks=args.skip_checks
        )
    except DmpError as exc:
        print(f"ingest failed: {exc}", file=sys.stderr)
        return 1
    Console().print(reconciliation_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
