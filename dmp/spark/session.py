"""The one place a SparkSession is built: local[2] with Delta by default, any cluster under spark-submit."""

from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession

SCALA_VERSION = "2.13"


def delta_package() -> str:
    """Maven coordinate of the Delta jar matching the installed pyspark and delta-spark."""
    from importlib.metadata import version

    import pyspark

    spark_mm = ".".join(pyspark.__version__.split(".")[:2])
    return f"io.delta:delta-spark_{spark_mm}_{SCALA_VERSION}:{version('delta-spark')}"


def hadoop_aws_package() -> str:
    """hadoop-aws for ``s3a://`` lakes, matching the Hadoop client bundled with pyspark."""
    from pathlib import Path

    import pyspark

    jars = Path(pyspark.__file__).parent / "jars"
    client = next(jars.glob("hadoop-client-api-*.jar"), None)
    hadoop_version = (
        client.name.removeprefix("hadoop-client-api-").removesuffix(".jar") if client else "3.4.1"
    )
    return f"org.apache.hadoop:hadoop-aws:{hadoop_version}"


def under_spark_submit() -> bool:
    # spark-submit starts the Python driver with a ready Py4J gateway; master and jars come from it.
    return "PYSPARK_GATEWAY_PORT" in os.environ


BASE_CONF: dict[str, str] = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.adaptive.enabled": "true",
    # Dates in specs and tables are calendar dates; keep Parquet datetime handling strict and modern.
    "spark.sql.parquet.datetimeRebaseModeInWrite": "CORRECTED",
    "spark.databricks.delta.schema.autoMerge.enabled": "false",
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.ui.showConsoleProgress": "false",
    # The two-level aggregate map puts a 64k-entry "fast" map in front of the regular one. Our
    # group-bys have hundreds of thousands to millions of keys per task (user x date x store x
    # brand x category; users x ids), so the fast map fills at once and every row pays for a
    # wasted probe: off, the 20M-event aggregate ran ~2-3 s (12%) faster (bench/README.md).
    "spark.sql.codegen.aggregate.map.twolevel.enabled": "false",
}


def get_spark(
    app_name: str = "dmp",
    master: str | None = None,
    conf: dict[str, str] | None = None,
) -> SparkSession:
    """Build (or reuse) the session.

    Outside spark-submit: master ``DMP_SPARK_MASTER`` or ``local[2]``, Delta jars resolved from Maven
    on first use and cached under ~/.ivy2*. Under spark-submit the master and packages given to
    spark-submit win, so the same job runs on standalone, YARN or Kubernetes unchanged.
    """
    builder = SparkSession.builder.appName(app_name)
    settings = dict(BASE_CONF)
    settings["spark.sql.shuffle.partitions"] = os.environ.get("DMP_SHUFFLE_PARTITIONS", "8")
    settings["spark.ui.enabled"] = os.environ.get("DMP_SPARK_UI", "false")
    settings["spark.driver.memory"] = os.environ.get("DMP_DRIVER_MEMORY", "4g")
    # Batch jobs want throughput, not short pauses: the parallel collector made a 20M-event aggregate
    # ~15% faster than the default G1 on 2 cores (bench/README.md). Local mode only: under spark-submit
    # the driver JVM is already running and the submitter's options apply.
    settings["spark.driver.extraJavaOptions"] = os.environ.get(
        "DMP_DRIVER_JAVA_OPTIONS", "-XX:+UseParallelGC"
    )
    settings.update(conf or {})
    for key, value in settings.items():
        builder = builder.config(key, value)
    if under_spark_submit():
        return builder.getOrCreate()
    # Python workers must run the interpreter that has pandas/sklearn (mapInPandas, pandas UDFs),
    # not whatever python3 comes first on PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = builder.master(master or os.environ.get("DMP_SPARK_MASTER", "local[2]"))
    packages = [delta_package()]
    if os.environ.get("DMP_S3A", "") == "1":
        packages.append(hadoop_aws_package())
    builder = builder.config("spark.jars.packages", ",".join(packages))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("DMP_SPARK_LOG_LEVEL", "ERROR"))
    return spark
