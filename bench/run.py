"""``make bench`` entry: ``python -m bench.run [--sizes 200k,1M,5M,20M] [--days 31] [--out bench_out] [--reuse-bronze]``.

Prints events/s for the Spark pipeline and DuckDB and their ratios per size (ingest against its DuckDB
twin, aggregate + tags, the whole pipeline; the twins' outputs checked equal), plus the time of one daily
incremental tags run after 7, 30 (and, with --days 61, 60) days of history; writes bench_out/results.json.
With --reuse-bronze ingest is not run or timed (nor its twin and the whole-pipeline ratio).
The default size is small (quick run); timings are only meaningful on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="200k", help="comma-separated event counts, e.g. 1M,5M,20M")
    parser.add_argument(
        "--days",
        type=int,
        default=31,
        help="days of history (31: incremental after 7 and 30 days; 61: also after 60)",
    )
    parser.add_argument("--out", default="bench_out")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2, help="generator processes")
    parser.add_argument(
        "--reuse-bronze",
        action="store_true",
        help="keep bronze/events of an earlier run on the same data (ingest not re-run or timed)",
    )
    args = parser.parse_args(argv)

    from bench.bench_pipeline import main as bench_main

    sizes = [s for s in args.sizes.split(",") if s.strip()]
    report = bench_main(sizes, args.days, args.out, args.seed, args.workers, args.reuse_bronze)
    print(f"results: {args.out}/results.json ({len(report['runs'])} size(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
