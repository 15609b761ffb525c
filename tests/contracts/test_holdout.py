from pyspark.sql import functions as F

from dmp.contracts.holdout import group_col, holdout_bucket, holdout_bucket_col


def test_python_and_spark_buckets_agree_exactly(spark):
    users = [str(i) for i in range(500)] + ["u-ä", "", "12345678901234567890"]
    df = spark.createDataFrame([(u,) for u in users], "user_id string")
    got = {r.user_id: r.b for r in df.select("user_id", holdout_bucket_col("s", "seg").alias("b")).collect()}
    for u in users:
        assert got[u] == holdout_bucket("s", "seg", u)


def test_holdout_share_and_stability(spark):
    df = spark.range(20000).select(F.col("id").cast("string").alias("user_id"))
    first = df.select("user_id", group_col("dmp-v1", "seg_a", 0.1).alias("g"))
    share = first.filter(F.col("g") == "holdout").count() / 20000
    assert 0.09 < share < 0.11
    again = df.select("user_id", group_col("dmp-v1", "seg_a", 0.1).alias("g2"))
    assert first.join(again, "user_id").filter(F.col("g") != F.col("g2")).count() == 0
    # another segment draws an independent holdout
    other = df.select("user_id", group_col("dmp-v1", "seg_b", 0.1).alias("g3"))
    both = first.join(other, "user_id").filter((F.col("g") == "holdout") & (F.col("g3") == "holdout")).count()
    assert both < 20000 * 0.1 * 0.1 * 1.5
