"""spark-submit entry: uplift of packs after their attribution window -> gold/uplift_results + reports.

``--segment S --run-date D`` evaluates one pack; without ``--segment`` every pack of the date(s)
(``--date D`` or ``--from D1 --to D2`` are accepted as run dates too).
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lake")
    parser.add_argument("--segments", default="segments")
    parser.add_argument("--segment", help="one segment (default: every pack of the run date)")
    parser.add_argument("--run-date", "--date", dest="date")
    parser.add_argument("--from", dest="from_")
    parser.add_argument("--to")
    parser.add_argument("--window-days", type=int, default=14)
    parser.add_argument("--out", help="report folder (default <lake>/../reports/<segment>/<run_date>)")
    parser.add_argument("--allow-open-window", action="store_true")
    parser.add_argument("--skip-checks", action="store_true", help="accepted for symmetry; no gate here")
    args = parser.parse_args(argv)

    from dmp.contracts.dates import resolve_dates
    from dmp.contracts.errors import DmpError
    from dmp.contracts.tables import resolve_lake
    from dmp.spark.session import get_spark
    from dmp.steps.evaluate import evaluate_pack, pack_segments

    try:
        lake = resolve_lake(args.lake)
        spark = get_spark("dmp-evaluate")
        days = resolve_dates(args.date, args.from_, args.to)
        pairs = [
            (s, d) for d in days for s in ([args.segment] if args.segment else pack_segments(spark, lake, d))
        ]
        for segment, day in pairs:
            out = f"{args.out}/{segment}/{day}" if args.out and len(pairs) > 1 else args.out
            res = evaluate_pack(spark, lake, segment, day, window_days=args.window_days, segments_dir=args.segments,
                                out_dir=out, allow_open_window=args.allow_open_window)  # fmt: skip
            print(f"evaluate {segment} {day}: {res.report['verdict']}; report {res.html_path}")
        if not pairs:
            print(f"no packs for {', '.join(map(str, days))}: nothing to evaluate")
    except DmpError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
