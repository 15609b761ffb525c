"""Benchmark: build every example pack on a demo lake, and the behaviour/rule packs in DuckDB.

    python -m bench.bench_packs --lake demo_out/lakehouse --date 2026-03-20 [--segments segments]
        [--suppression DIR]   # load DIR/<name>.csv as suppression list <name> first (not timed)

1. ``build_packs`` for all specs of ``--segments`` (writes gold/audience_packs as the pipeline does),
   timed per pack from the report and in total; the lookalike's recall@k / lift are printed.
2. The candidates of the ``rule`` specs (tag filters) and of the ``store_revisit`` specs (window +
   scope + purchasers) computed by Spark (collected) and by DuckDB with the same SQL logic on the
   same Parquet files (the current Delta snapshot's files, so both read identical data); the user
   sets must be equal, and the times are printed side by side.

Not run by ``make test``. Prints one JSON document (``--out FILE`` also writes it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any


def _sql_value(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def where_sql(cond: Any) -> str:
    """The same two-valued semantics as dmp.transforms.where.where_col, in DuckDB SQL."""
    from dmp.contracts.specs import AllOf, AnyOf, NotOf, tag_value
    from dmp.contracts.vocab import TAG_COLUMN_KINDS

    if isinstance(cond, AllOf):
        return "(" + " AND ".join(where_sql(c) for c in cond.all) + ")"
    if isinstance(cond, AnyOf):
        return "(" + " OR ".join(where_sql(c) for c in cond.any) + ")"
    if isinstance(cond, NotOf):
        return f"(NOT {where_sql(cond.not_)})"
    kind = TAG_COLUMN_KINDS[cond.tag]
    col, op, value = f'"{cond.tag}"', cond.op, cond.value
    if op == "is_null":
        return f"({col} IS {'' if value else 'NOT '}NULL)"
    vals = [tag_value(kind, v) for v in value] if isinstance(value, list) else tag_value(kind, value)
    if kind == "array":
        if op == "contains":
            expr = f"list_contains({col}, {_sql_value(vals)})"
        else:
            overlap = f"list_has_any({col}, [{', '.join(_sql_value(v) for v in vals)}])"
            expr = overlap if op == "in" else f"NOT {overlap}"
    elif op in ("in", "not_in"):
        expr = f"{col} {'NOT ' if op == 'not_in' else ''}IN ({', '.join(_sql_value(v) for v in vals)})"
    elif op == "between":
        expr = f"{col} BETWEEN {_sql_value(vals[0])} AND {_sql_value(vals[1])}"
    else:
        sym = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
        expr = f"{col} {sym} {_sql_value(vals)}"
    return f"COALESCE({expr}, FALSE)"


def revisit_sql(spec: Any, run_date: date, daily: str) -> str:
    from dmp.contracts.dates import window_start
    from dmp.transforms.packs import BEHAVIOR_COLUMNS

    scope = spec.scope
    conds = [
        f"event_date BETWEEN {_sql_value(window_start(run_date, spec.window_days))} AND {_sql_value(run_date)}"
    ]
    for col, ids in (
        ("store_id", scope.store_ids),
        ("brand_id", scope.brand_ids),
        ("category_id", scope.category_ids),
    ):
        if ids:
            conds.append(f"{col} IN ({', '.join(_sql_value(i) for i in ids)})")
    behaviour = " + ".join(BEHAVIOR_COLUMNS[b] for b in spec.behaviors)
    having = f"SUM({behaviour}) > 0" + (" AND SUM(orders) = 0" if spec.exclude_purchasers else "")
    return f"SELECT user_id FROM {daily} WHERE {' AND '.join(conds)} GROUP BY user_id HAVING {having}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lake", required=True)
    parser.add_argument("--date", required=True)
    parser.add_argument("--segments", default="segments")
    parser.add_argument("--out")
    parser.add_argument(
        "--suppression", help="folder of <name>.csv suppression lists to load before the build (not timed)"
    )
    args = parser.parse_args(argv)

    import duckdb
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    from dmp.contracts import tables
    from dmp.contracts.dates import parse_date
    from dmp.contracts.specs import load_specs
    from dmp.spark import lake as lk
    from dmp.spark.session import get_spark
    from dmp.steps.packs import build_packs
    from dmp.transforms.packs import rule_candidates, store_revisit_candidates

    run_date = parse_date(args.date)
    root = tables.resolve_lake(args.lake)
    spark = get_spark("dmp-bench-packs")
    result: dict[str, Any] = {"lake": root, "run_date": str(run_date)}
    if args.suppression:
        from dmp.steps.suppression import run_ingest_suppression

        for csv in sorted(Path(args.suppression).glob("*.csv")):
            loaded = run_ingest_suppression(spark, root, csv.stem, str(csv))
            result.setdefault("suppression_lists", {})[csv.stem] = loaded.accepted

    t0 = time.perf_counter()
    report = build_packs(spark, root, args.segments, run_date)
    result["build_all_s"] = round(time.perf_counter() - t0, 2)
    result["packs"] = {
        r.segment: {
            "status": r.status,
            "size": r.size,
            "holdout": r.holdout_size,
            "error": r.error,
            "lookalike": {
                k: r.metrics.get("lookalike", {}).get(k)
                for k in ("recall_at_k", "random_recall_at_k", "lift", "auc", "n_seed", "k")
            }
            if "lookalike" in r.metrics
            else None,
        }
        for r in report.results
    }

    def files(table: str, part: str) -> str:
        paths = DeltaTable.forPath(spark, tables.table_path(root, table)).toDF().inputFiles()
        listed = ", ".join("'" + p.removeprefix("file://") + "'" for p in paths)
        return f"read_parquet([{listed}], hive_partitioning = true, hive_types = {{'{part}': DATE}})"

    con = duckdb.connect()
    con.execute("SET threads = 2")
    daily_src, tags_src = files(tables.USER_DAILY, "event_date"), files(tables.USER_TAGS, "as_of_date")
    spec_set = load_specs(args.segments)
    compare: dict[str, Any] = {}
    for name, spec in sorted(spec_set.specs.items()):
        if spec.kind not in ("rule", "store_revisit") or (
            spec.kind == "store_revisit" and spec.where is not None
        ):
            continue
        t0 = time.perf_counter()
        if spec.kind == "rule":
            tags_df = lk.read_table(spark, root, tables.USER_TAGS).filter(
                F.col("as_of_date") == F.lit(run_date)
            )
            spark_users = {r["user_id"] for r in rule_candidates(tags_df, spec).select("user_id").collect()}
            sql = f"SELECT user_id FROM {tags_src} WHERE as_of_date = {_sql_value(run_date)} AND {where_sql(spec.where)}"
        else:
            daily_df = lk.read_table(spark, root, tables.USER_DAILY)
            spark_users = {
                r["user_id"]
                for r in store_revisit_candidates(daily_df, spec, run_date).select("user_id").collect()
            }
            sql = revisit_sql(spec, run_date, daily_src)
        spark_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        duck_users = {row[0] for row in con.execute(sql).fetchall()}
        duck_s = time.perf_counter() - t0
        compare[name] = {
            "kind": spec.kind,
            "users": len(spark_users),
            "same_users": spark_users == duck_users,
            "spark_s": round(spark_s, 3),
            "duckdb_s": round(duck_s, 3),
            "ratio_spark_over_duckdb": round(spark_s / duck_s, 1) if duck_s > 0 else None,
        }
    result["candidates_spark_vs_duckdb"] = compare
    text = json.dumps(result, indent=2, default=str)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    spark.stop()
    ok = report.ok and all(c["same_users"] for c in compare.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
