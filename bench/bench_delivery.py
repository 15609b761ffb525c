"""Benchmark: deliver a 1M-user pack to two channels vs a plain boto3 upload of the same bytes.

    .venv/bin/python -m bench.bench_delivery [--users 1000000] [--keep]

Starts a throwaway MinIO (tests/support/s3server.py), builds a synthetic lake with Spark (pack + identities + consents),
runs ``dmp.steps.deliver.deliver`` for ``jd_ads`` (incremental; first delivery = full) and ``tencent_ads``
(full), then uploads exactly the delivered objects again with plain ``boto3 put_object`` to another
prefix of the same server. Prints MB/s, rows/s and the ratio (delivery wall time / plain upload time).
The delivery time includes the Spark join + normalise + hash, collection, sorting and gzip; the
plain upload is only the network/storage part, so the ratio is the price of everything else.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

CHANNELS = """
channels:
  jd_ads:
    type: ad
    destination: s3://bench/ads
    id_types: [oaid, idfa, imei, phone]
    hash: {oaid: md5, idfa: md5, imei: md5, phone: sha256}
    phone_format: e164
    sync: incremental
  tencent_ads:
    type: ad
    destination: s3://bench/ads
    id_types: [oaid, idfa, phone, email]
    hash: {oaid: md5, idfa: md5, phone: md5, email: sha256}
    phone_format: cn11
    sync: full
"""


def build_lake(spark, lake: str, users: int, run_date: date) -> None:  # noqa: ANN001
    from pyspark.sql import functions as F

    from dmp.contracts import tables
    from dmp.spark import lake as lk

    base = spark.range(users).withColumn("user_id", F.format_string("u%08d", F.col("id")))
    bucket = F.col("id") % 10
    uuid = F.upper(
        F.regexp_replace(F.md5(F.col("user_id")), r"^(.{8})(.{4})(.{4})(.{4})(.{12})$", "$1-$2-$3-$4-$5")
    )
    ids = (
        base.select(
            "user_id",
            F.when(bucket < 5, F.lit("oaid"))
            .when(bucket < 7, F.lit("idfa"))
            .otherwise(F.lit("phone"))
            .alias("id_type"),
            F.when(bucket < 7, uuid)
            .otherwise(F.format_string("1%d%09d", F.lit(3) + F.col("id") % 7, F.col("id") % 1_000_000_000))
            .alias("id_value"),
        )
        .unionByName(  # every 4th user also has an email (tencent's last resort)
            base.filter(F.col("id") % 4 == 0).select(
                "user_id",
                F.lit("email").alias("id_type"),
                F.format_string(" User%d@Example.com ", F.col("id")).alias("id_value"),
            )
        )
        .withColumn("source_file", F.lit("bench"))
        .withColumn("ingested_at", F.current_timestamp())
    )
    ids.write.format("delta").mode("overwrite").save(tables.table_path(lake, tables.IDENTITIES))
    packs = base.select(
        F.lit("bench_pack").alias("segment"),
        F.lit(run_date).alias("run_date"),
        "user_id",
        F.when(F.col("id") % 10 == 9, F.lit("holdout")).otherwise(F.lit("treatment")).alias("group"),
        F.lit(1.0).alias("score"),
        F.lit("bench").alias("reason"),
        F.lit("h").alias("spec_hash"),
        F.lit("rule").alias("kind"),
        F.lit(True).alias("deliverable"),
    )
    lk.overwrite_partitions(
        packs, lake, tables.AUDIENCE_PACKS, ["segment", "run_date"], "segment = 'bench_pack'"
    )
    # Both channels are ads: every user has answered ad_personalization, every 20th said no, so the
    # consent filter runs on every row and removes 5 % (docs/privacy.md).
    consents = base.select(
        "user_id",
        F.lit("ad_personalization").alias("purpose"),
        (F.col("id") % 20 != 7).alias("granted"),
        F.lit("2026-01-01 00:00:00").cast("timestamp").alias("at"),
        F.lit("bench").alias("source"),
        F.lit("bench").alias("source_file"),
        F.current_timestamp().alias("ingested_at"),
    )
    consents.write.format("delta").mode("overwrite").save(tables.table_path(lake, tables.CONSENTS))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=1_000_000)
    args = parser.parse_args(argv)

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import yaml

    from dmp.contracts.channels import parse_channels
    from dmp.delivery.storage import s3_client
    from dmp.spark.session import get_spark
    from dmp.steps.deliver import DeliveryTarget, deliver
    from tests.support.s3server import MinioServer

    run_date = date(2026, 3, 14)
    with tempfile.TemporaryDirectory(prefix="dmp-bench-") as tmp, MinioServer() as server:
        os.environ["DMP_S3_MAX_ATTEMPTS"] = "5"
        server.create_bucket("bench")
        spark = get_spark("dmp-bench-delivery")
        lake = f"{tmp}/lake"
        t0 = time.perf_counter()
        build_lake(spark, lake, args.users, run_date)
        print(f"built lake: {args.users:,} users in {time.perf_counter() - t0:.1f}s")
        channels = parse_channels(yaml.safe_load(CHANNELS), Path("bench/channels.yaml"))
        targets = {"bench_pack": DeliveryTarget("bench_pack", ("jd_ads", "tencent_ads"))}

        t0 = time.perf_counter()
        results = deliver(spark, lake, [run_date], targets, channels)
        t_deliver = time.perf_counter() - t0

        client = s3_client()
        objects = client.list_objects_v2(Bucket="bench", Prefix="ads/")["Contents"]
        payload = [
            (o["Key"], client.get_object(Bucket="bench", Key=o["Key"])["Body"].read()) for o in objects
        ]
        total_bytes = sum(len(b) for _k, b in payload)
        rows = sum(int(r.counts["delivered_rows"]) for r in results)
        t0 = time.perf_counter()
        for key, body in payload:
            client.put_object(Bucket="bench", Key=f"plain/{key}", Body=body)
        t_plain = time.perf_counter() - t0
        spark.stop()

    mb = total_bytes / 1e6
    for r in results:
        c = r.counts
        print(
            f"  {r.channel}: {c['delivered_rows']:,} rows, match rate {c['match_rate']:.3f}, "
            f"unmatched {c['unmatched_by_reason']}"
        )
    print(
        f"deliver (2 channels): {t_deliver:.1f}s  {mb / t_deliver:.2f} MB/s  {rows / t_deliver:,.0f} rows/s  ({mb:.1f} MB, {rows:,} rows, {len(payload)} objects)"
    )
    print(f"plain boto3 upload  : {t_plain:.2f}s  {mb / t_plain:.2f} MB/s  {rows / t_plain:,.0f} rows/s")
    print(f"ratio deliver / plain upload time: {t_deliver / t_plain:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
