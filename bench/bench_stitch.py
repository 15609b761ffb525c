"""Benchmark: identity stitching in Spark (``dmp.steps.stitch.run_stitch``) vs a DuckDB baseline.

    .venv/bin/python -m bench.bench_stitch [--size 1M] [--out bench_out/stitch] [--seed 7]

``--size`` accounts (``200k``, ``1M``; at most 1,111,110: the synthetic phone numbers stay clear of
the repeated-digit guard up to there), about 3.2 identifiers each: a device id (OAID for even
account numbers, IDFA for odd ones), a phone (E.164) and an email, plus

- **chains**: in 20% of the blocks of ten accounts the first 2-5 accounts are one person, each
  sharing the previous account's device (odd positions) or phone (even positions);
- **hubs**: 1% of the accounts (the first 100 of every 10,000) share a phone with 99 others, over
  the cap of 20 accounts per identifier: they link nobody;
- **blocked**: every 97th odd account also reports the all-zero IDFA.

The truth is known by construction (an account's component is its chain, else itself).

1. The data is written as ``silver/identities`` of a fresh lake (not timed).
2. Spark (local[2], the session's start-up not timed): ``run_stitch`` for one date: normalise the
   values (the phone parser is a pandas UDF), guards, large-star / small-star components, person
   ids, and the three Delta writes; then the same call again (a rerun: compares, writes nothing).
3. DuckDB (same process, threads = Spark's cores), on the **same Parquet files** (the Delta
   table's active files): the same guards (blocked values and the cap; the data holds no value a
   blocked pattern matches, which Spark's violations confirm) and the same star edges (each
   account of a linking identifier -> the identifier's smallest account), then min-label
   propagation with pointer jumping until no label changes, the person cap, and the persons
   written to Parquet. The values are generated in normalised form, so DuckDB needs no phone
   parser: this is Spark's whole step against the baseline's guards + components.
4. **Components only, on the same edges**: Spark's star edges written to Parquet (not timed),
   then ``connected_components`` on them (labels written to Parquet) against DuckDB's label
   propagation on the same file; both label a node with its component's smallest node, so the
   labels must be equal.

Printed: accounts/s of both, Spark's rounds and DuckDB's iterations, the ratios Spark / DuckDB (whole
step; components only), and whether both found the same components (every account's smallest
co-member equal) and the truth.
Not run by ``make test``; ``tests/bench/test_bench_stitch.py`` runs it on a few thousand accounts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from bench.bench_pipeline import active_parquet_files, parse_size
from dmp.contracts import tables
from dmp.contracts.identity_guards import (
    RULE_BLOCKED_PATTERN,
    RULE_BLOCKED_VALUE,
    RULE_IDENTIFIER_CAP,
    RULE_PERSON_CAP,
    ZERO_DEVICE_ID,
    IdentityGuards,
)
from dmp.contracts.vocab import ID_TYPES

RUN_DATE = date(2026, 3, 1)
MAX_ACCOUNTS = 1_111_110  # phone tails 10,000,000 + n stay below 11,111,111 (repeated digits)
CHAIN_SHARE_PCT = 20
HUB_EVERY, HUB_ACCOUNTS = 10_000, 100
ZERO_IDFA_EVERY = 97


def full_hubs(accounts: int) -> int:
    """Hubs with all their HUB_ACCOUNTS accounts (a last, smaller one is not planted: under the cap it
    would be a person)."""
    return accounts // HUB_EVERY + (1 if accounts % HUB_EVERY >= HUB_ACCOUNTS else 0)


def build_identities(spark: Any, accounts: int, seed: int) -> tuple[Any, Any]:
    """(identity rows in the silver/identities layout, ``user_id, expected``: the truth)."""
    from pyspark.sql import functions as F

    if not 0 < accounts <= MAX_ACCOUNTS:
        raise SystemExit(f"--size: between 1 and {MAX_ACCOUNTS:,} accounts")
    n = F.col("id")
    user = F.format_string("a%09d", n)
    h = F.abs(F.xxhash64(F.lit(seed), F.floor(n / 10)))  # one hash per block of ten
    # integer arithmetic only: h / 100 as a double loses the low bits of a 63-bit hash
    size = F.lit(2) + F.floor((h % 10_000) / 100) % 4
    chain_size = F.when(h % 100 < CHAIN_SHARE_PCT, size).otherwise(0)

    def device(col: Any) -> Any:
        hexed = F.md5(F.concat_ws(":", F.lit(seed), F.lit("device"), col))
        uuid = F.regexp_replace(hexed, r"^(.{8})(.{4})(.{4})(.{4})(.{12})$", "$1-$2-$3-$4-$5")
        return F.when(col % 2 == 0, F.lit("oaid")).otherwise(F.lit("idfa")), F.when(
            col % 2 == 0, uuid
        ).otherwise(F.upper(uuid))

    def phone(col: Any) -> Any:
        return F.concat(F.lit("+86137"), (F.lit(10_000_000) + col).cast("string"))

    base = spark.range(accounts).select(
        "id", user.alias("user_id"), (n % 10).alias("pos"), chain_size.alias("chain")
    )
    dev_type, dev_value = device(n)
    prev_type, prev_value = device(n - 1)
    rows = [
        base.select("user_id", dev_type.alias("id_type"), dev_value.alias("id_value")),
        base.select("user_id", F.lit("phone").alias("id_type"), phone(n).alias("id_value")),
        base.select(
            "user_id", F.lit("email").alias("id_type"), F.format_string("u%d@mail.cn", n).alias("id_value")
        ),
        base.filter((F.col("pos") >= 1) & (F.col("pos") < F.col("chain"))).select(
            "user_id",
            F.when(F.col("pos") % 2 == 1, prev_type).otherwise(F.lit("phone")).alias("id_type"),
            F.when(F.col("pos") % 2 == 1, prev_value).otherwise(phone(n - 1)).alias("id_value"),
        ),
        base.filter((n % HUB_EVERY < HUB_ACCOUNTS) & (F.floor(n / HUB_EVERY) < full_hubs(accounts))).select(
            "user_id",
            F.lit("phone").alias("id_type"),
            F.concat(
                F.lit("+86136"), (F.lit(10_000_000) + (n / HUB_EVERY).cast("long")).cast("string")
            ).alias("id_value"),
        ),
        base.filter((n % 2 == 1) & (n % ZERO_IDFA_EVERY == 5)).select(
            "user_id", F.lit("idfa").alias("id_type"), F.lit(ZERO_DEVICE_ID).alias("id_value")
        ),
    ]
    identities = rows[0]
    for part in rows[1:]:
        identities = identities.unionByName(part)
    identities = identities.withColumn("source_file", F.lit("bench")).withColumn(
        "ingested_at", F.current_timestamp()
    )
    first = F.format_string("a%09d", n - F.col("pos"))
    truth = base.select(
        "user_id", F.when(F.col("pos") < F.col("chain"), first).otherwise(F.col("user_id")).alias("expected")
    )
    return identities, truth


def _duck_components(con: Any, edges_sql: str) -> int:
    """Table ``lab`` (node, comp = smallest node of its component) of the ``src, dst`` edges that
    ``edges_sql`` selects: min-label propagation with pointer jumping; returns the iterations."""
    con.execute(
        f"CREATE OR REPLACE TABLE und AS WITH e AS ({edges_sql}) SELECT src AS a, dst AS b FROM e UNION ALL SELECT dst, src FROM e"
    )
    con.execute("CREATE OR REPLACE TABLE lab AS SELECT DISTINCT a AS node, a AS comp FROM und")
    iterations = 0
    while True:
        iterations += 1
        con.execute("""
            CREATE OR REPLACE TABLE step AS
            SELECT l.node, least(l.comp, min(n.comp)) AS comp
            FROM lab l JOIN und u ON u.a = l.node JOIN lab n ON n.node = u.b GROUP BY l.node, l.comp
        """)
        con.execute("""
            CREATE OR REPLACE TABLE jumped AS
            SELECT s.node, least(s.comp, p.comp) AS comp FROM step s JOIN step p ON p.node = s.comp
        """)
        changed = con.execute(
            "SELECT count(*) FROM jumped JOIN lab USING (node) WHERE jumped.comp <> lab.comp"
        ).fetchone()[0]
        con.execute("CREATE OR REPLACE TABLE lab AS SELECT * FROM jumped")
        if changed == 0:
            return iterations


def duck_components(edges: Path, out: Path, threads: int) -> dict[str, Any]:
    """Components of the edges Spark stitched from (Parquet), written to ``out`` (node, comp)."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    t0 = time.perf_counter()
    iterations = _duck_components(con, f"SELECT src, dst FROM read_parquet('{edges}/*.parquet')")
    con.execute(f"COPY lab TO '{out}' (FORMAT PARQUET)")
    return {"total_s": round(time.perf_counter() - t0, 3), "iterations": iterations}


def duck_stitch(files: list[str], guards: IdentityGuards, out_dir: Path, threads: int) -> dict[str, Any]:
    """The same guards and star edges as Spark, the components, the person cap; ``persons.parquet``
    = ``user_id, comp`` (the smallest account of the component)."""
    import duckdb

    out_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    blocked = [(t, v) for t in ID_TYPES for v in guards.blocked_values.of(t)]
    t0 = time.perf_counter()
    con.execute(
        "CREATE TABLE ids AS SELECT user_id, id_type, id_value AS id_key FROM read_parquet(?)", [files]
    )
    con.execute("CREATE TABLE blocked(id_type VARCHAR, id_key VARCHAR)")
    con.executemany("INSERT INTO blocked VALUES (?, ?)", blocked)
    con.execute(f"""
        CREATE TABLE flagged AS
        SELECT i.id_type, i.id_key, count(DISTINCT user_id) AS accounts, min(user_id) AS anchor,
               CASE WHEN any_value(b.id_key) IS NOT NULL THEN '{RULE_BLOCKED_VALUE}'
                    WHEN count(DISTINCT user_id) > {guards.max_accounts_per_identifier}
                    THEN '{RULE_IDENTIFIER_CAP}' END AS rule
        FROM ids i LEFT JOIN blocked b USING (id_type, id_key) GROUP BY i.id_type, i.id_key
    """)
    iterations = _duck_components(
        con,
        "SELECT DISTINCT i.user_id AS src, f.anchor AS dst FROM ids i JOIN flagged f USING (id_type, id_key) "
        "WHERE f.rule IS NULL AND f.accounts >= 2 AND i.user_id <> f.anchor",
    )
    cap = guards.max_accounts_per_person
    con.execute(f"""
        COPY (
            WITH acc AS (SELECT DISTINCT user_id FROM ids),
            labelled AS (SELECT user_id, coalesce(l.comp, user_id) AS comp FROM acc LEFT JOIN lab l ON l.node = acc.user_id)
            SELECT user_id, CASE WHEN count(*) OVER (PARTITION BY comp) > {cap} THEN user_id ELSE comp END AS comp
            FROM labelled
        ) TO '{out_dir / "persons.parquet"}' (FORMAT PARQUET)
    """)
    elapsed = time.perf_counter() - t0
    rules = dict(
        con.execute("SELECT rule, count(*) FROM flagged WHERE rule IS NOT NULL GROUP BY rule").fetchall()
    )
    accounts = con.execute(f"SELECT count(*) FROM read_parquet('{out_dir / 'persons.parquet'}')").fetchone()[
        0
    ]
    return {"total_s": round(elapsed, 3), "iterations": iterations, "accounts": accounts, "violations": rules}


def spark_edges(spark: Any, lake: str, guards: IdentityGuards, path: Path) -> int:
    """The star edges ``run_stitch`` computes its components from, written to ``path``; their number."""
    from pyspark.sql import functions as F

    from dmp.spark import lake as lk
    from dmp.transforms.stitching import identifier_accounts, link_edges, with_match_key, with_violation_rule

    keyed = with_match_key(lk.read_table(spark, lake, tables.IDENTITIES)).localCheckpoint()
    flagged = with_violation_rule(identifier_accounts(keyed), guards)
    linking = flagged.filter(F.col("rule").isNull() & (F.col("accounts") >= 2))
    link_edges(keyed, linking).write.mode("overwrite").parquet(str(path))
    return spark.read.parquet(str(path)).count()


def spark_components(spark: Any, edges: Path, out: Path) -> dict[str, Any]:
    """``connected_components`` of the Parquet edges, written to ``out`` (node, component)."""
    from dmp.transforms.stitching import connected_components

    t0 = time.perf_counter()
    labels, rounds = connected_components(spark.read.parquet(str(edges)))
    labels.write.mode("overwrite").parquet(str(out))
    return {"total_s": round(time.perf_counter() - t0, 3), "rounds": rounds}


def _same_labels(spark_labels: Path, duck_labels: Path) -> bool:
    import duckdb

    query = f"""
        SELECT count(*) FILTER (WHERE s.component IS DISTINCT FROM d.comp), count(*)
        FROM read_parquet('{spark_labels}/*.parquet') s FULL OUTER JOIN read_parquet('{duck_labels}') d USING (node)
    """
    mismatches, rows = duckdb.connect().execute(query).fetchone()
    return mismatches == 0 and rows > 0


def _spark_components(spark: Any, lake: str, path: Path) -> None:
    """Spark's persons as ``user_id, comp`` (the smallest account of the person) in ``path``."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from dmp.spark import lake as lk

    persons = lk.read_table(spark, lake, tables.PERSONS)
    comp = F.min("user_id").over(Window.partitionBy("person_id"))
    persons.select("user_id", comp.alias("comp")).write.mode("overwrite").parquet(str(path))


def _compare(duck_persons: Path, spark_persons: Path, truth: Path) -> dict[str, bool]:
    import duckdb

    con = duckdb.connect()

    def same(a: str, b: str, col_b: str) -> bool:
        query = f"""
            SELECT count(*) FILTER (WHERE x.comp IS DISTINCT FROM y.{col_b}), count(*)
            FROM read_parquet('{a}') x FULL OUTER JOIN read_parquet('{b}') y USING (user_id)
        """
        mismatches, rows = con.execute(query).fetchone()
        return mismatches == 0 and rows > 0

    spark_files, truth_files = f"{spark_persons}/*.parquet", f"{truth}/*.parquet"
    return {
        "same_components": same(str(duck_persons), spark_files, "comp"),
        "spark_matches_truth": same(spark_files, truth_files, "expected"),
    }


def run_bench(spark: Any, accounts: int, out: Path, seed: int, threads: int) -> dict[str, Any]:
    """Build the data, time Spark's step (and its rerun) and DuckDB's baseline, check the outputs."""
    from dmp.spark import lake as lk
    from dmp.steps.stitch import run_stitch

    guards = IdentityGuards()
    lake = str(out / "lake")
    identities, truth = build_identities(spark, accounts, seed)
    lk.overwrite_table(identities, lake, tables.IDENTITIES)
    truth.write.mode("overwrite").parquet(str(out / "truth"))
    n_identifiers = lk.read_table(spark, lake, tables.IDENTITIES).count()

    t0 = time.perf_counter()
    result = run_stitch(spark, lake, RUN_DATE, guards)
    spark_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    rerun = run_stitch(spark, lake, RUN_DATE, guards)
    rerun_s = time.perf_counter() - t0
    _spark_components(spark, lake, out / "spark_persons")

    duck = duck_stitch(active_parquet_files(spark, lake, tables.IDENTITIES), guards, out / "duckdb", threads)
    n_edges = spark_edges(spark, lake, guards, out / "edges")
    spark_cc = spark_components(spark, out / "edges", out / "spark_labels")
    duck_cc = duck_components(out / "edges", out / "duckdb" / "labels.parquet", threads)
    components = {
        "edges": n_edges,
        "spark": spark_cc,
        "duckdb": duck_cc,
        "ratio_spark_over_duckdb": round(spark_cc["total_s"] / duck_cc["total_s"], 2),
        "same_components": _same_labels(out / "spark_labels", out / "duckdb" / "labels.parquet"),
    }
    checks = _compare(out / "duckdb" / "persons.parquet", out / "spark_persons", out / "truth")
    expected_violations = {RULE_IDENTIFIER_CAP: full_hubs(accounts), RULE_BLOCKED_VALUE: 1}
    spark_report = {
        "total_s": round(spark_s, 3),
        "accounts_per_s": round(result.accounts / spark_s),
        "rounds": result.rounds,
        "persons": result.persons,
        "multi_account_persons": result.multi_account_persons,
        "violations": result.violations,
        "rerun_s": round(rerun_s, 3),
        "rerun_wrote_nothing": not any(rerun.written.values()),
    }
    return {
        "accounts": result.accounts,
        "identifiers": n_identifiers,
        "spark": spark_report,
        "duckdb": {**duck, "accounts_per_s": round(duck["accounts"] / duck["total_s"])},
        "ratio_spark_over_duckdb": round(spark_report["total_s"] / duck["total_s"], 2),
        "components_only": components,
        **checks,
        "same_violations": {k: v for k, v in result.violations.items() if k != RULE_PERSON_CAP}
        == duck["violations"],
        "expected_violations": result.violations == expected_violations,
        "no_pattern_violations": RULE_BLOCKED_PATTERN not in result.violations,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="1M", help="accounts, e.g. 200k or 1M (at most 1,111,110)")
    parser.add_argument("--out", default="bench_out/stitch")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    os.environ.setdefault("DMP_DRIVER_MEMORY", "8g")
    from dmp.spark.session import get_spark

    out = Path(args.out).resolve()
    spark = get_spark("dmp-bench-stitch")
    threads = int(spark.sparkContext.defaultParallelism)
    report = run_bench(spark, parse_size(args.size), out, args.seed, threads)
    report["machine"] = {"cpus": os.cpu_count(), "duckdb_threads": threads, "load_avg": os.getloadavg()}
    spark.stop()
    (out / "results.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    s, d = report["spark"], report["duckdb"]
    print(
        f"stitch {report['accounts']:,} accounts / {report['identifiers']:,} identifiers: "
        f"Spark {s['total_s']:.1f} s ({s['accounts_per_s']:,} accounts/s, {s['rounds']} rounds), "
        f"rerun {s['rerun_s']:.1f} s; DuckDB {d['total_s']:.1f} s ({d['accounts_per_s']:,} accounts/s, "
        f"{d['iterations']} iterations); ratio Spark/DuckDB {report['ratio_spark_over_duckdb']}x"
    )
    print(
        f"persons {s['persons']:,} ({s['multi_account_persons']:,} with several accounts), violations "
        f"{s['violations']}; same components: {report['same_components']}, truth: "
        f"{report['spark_matches_truth']}, same violations: {report['same_violations']}"
    )
    c = report["components_only"]
    print(
        f"components only, on the same {c['edges']:,} edges: Spark {c['spark']['total_s']:.1f} s "
        f"({c['spark']['rounds']} rounds), DuckDB {c['duckdb']['total_s']:.2f} s ({c['duckdb']['iterations']} "
        f"iterations); ratio {c['ratio_spark_over_duckdb']}x; same components: {c['same_components']}"
    )
    print(f"results: {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
