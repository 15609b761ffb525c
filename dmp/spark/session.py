"""The one place a SparkSession is built: local[2] with Delta by default, any cluster under spark-submit."""

from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession

from dmp.contracts.packages import spark_packages
from dmp.contracts.settings import env_setting


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
    # Python workers must run the interpreter that has pandas/sklearn/phonenumbers (mapInPandas,
    # pandas UDFs), not whatever python3 comes first on PATH. The SparkContext reads this when it
    # starts, under spark-submit too; the one place dmp sets it (an explicit value wins).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    settings = dict(BASE_CONF)
    settings["spark.sql.shuffle.partitions"] = env_setting("shuffle_partitions")
    settings["spark.ui.enabled"] = env_setting("spark_ui")
    settings["spark.driver.memory"] = env_setting("local_driver_memory")
    # Batch jobs want throughput, not short pauses (see the setting). Local mode only: under
    # spark-submit the driver JVM is already running and the submitter's options apply.
    settings["spark.driver.extraJavaOptions"] = env_setting("driver_java_options")
    settings.update(conf or {})
    for key, value in settings.items():
        builder = builder.config(key, value)
    if under_spark_submit():
        return builder.getOrCreate()
    builder = builder.master(master or env_setting("spark_master"))
    builder = builder.config("spark.jars.packages", spark_packages(s3a=env_setting("s3a") == "1"))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(env_setting("spark_log_level"))
    return spark
