"""spark-submit entry: segments/*.yaml -> gold/audience_packs + ops/pack_runs for --date D or --from/--to."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lake")
    parser.add_argument("--date")
    parser.add_argument("--from", dest="from_")
    parser.add_argument("--to")
    parser.add_argument("--segments", default="segments")
    parser.add_argument("--spec", action="append", type=Path, help="only this spec (and its dependencies)")
    parser.add_argument(
        "--skip-checks", action="store_true", help="accepted for symmetry; packs have no GX gate"
    )
    args = parser.parse_args(argv)

    from dmp.contracts.dates import resolve_dates
    from dmp.contracts.errors import DmpError
    from dmp.contracts.tables import resolve_lake
    from dmp.spark.session import get_spark
    from dmp.steps.packs import build_packs

    try:
        days = resolve_dates(args.date, args.from_, args.to)
        # lookalike scoring runs pandas in Python workers: use this interpreter, not PATH python3
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        spark = get_spark("dmp-build-packs")
        problems = []
        for day in days:
            report = build_packs(spark, resolve_lake(args.lake), args.segments, day, args.spec)
            for res in report.results:
                print(
                    f"{day} {res.segment}: {res.status} size={res.size} holdout={res.holdout_size} "
                    f"deliverable={res.deliverable}{' (' + res.reason + ')' if res.reason else ''}"
                )
            problems += report.invalid + [f"{day} {r.segment}: {r.error}" for r in report.failed]
    except DmpError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for line in problems:
        print(f"error: {line}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
