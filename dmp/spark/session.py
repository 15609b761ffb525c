"""The one place a SparkSession is built: local[2] with Delta by default, any cluster under spark-submit.

For an ``s3a://`` lake (``DMP_S3A=1``) it also configures S3A from the standard AWS environment
(endpoint, region; keys come from S3A's default provider chain) and the Delta log store that makes
several Spark drivers committing to one table safe on S3 (``dmp.contracts.packages.logstore_jar``).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import SparkSession

from dmp.contracts.packages import LOGSTORE_CLASS, cache_folder, logstore_jar, spark_packages
from dmp.contracts.settings import env_setting
from dmp.spark import progress


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


def s3a_conf(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Spark settings for an ``s3a://`` lake, read from the standard AWS environment.

    ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` (MinIO and other S3-compatible stores) becomes
    ``fs.s3a.endpoint`` with path-style access; ``AWS_REGION`` / ``AWS_DEFAULT_REGION`` the
    endpoint region. Every commit to the lake's ``_delta_log`` goes through the conditional-put log
    store: S3's default Delta log store (S3SingleDriverLogStore) is safe for one driver only, and
    two drivers committing the same version overwrite each other's commit file without an error.
    """
    env = os.environ if environ is None else environ
    conf = {
        "spark.delta.logStore.s3a.impl": LOGSTORE_CLASS,
        "spark.delta.logStore.s3.impl": LOGSTORE_CLASS,
        # S3A's conditional create (If-None-Match: *) is on by default; say so, since it is what
        # the log store relies on (it fails a commit rather than overwrite when this is off).
        "spark.hadoop.fs.s3a.create.conditional.enabled": "true",
    }
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        conf["spark.hadoop.fs.s3a.endpoint"] = endpoint
        conf["spark.hadoop.fs.s3a.path.style.access"] = "true"
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region:
        conf["spark.hadoop.fs.s3a.endpoint.region"] = region
    return conf


@contextmanager
def first_resolution(packages: str) -> Iterator[None]:
    """Serialise the first Maven resolution of ``packages`` among the processes of this machine.

    Ivy does not lock its cache: two JVMs downloading the same jar at once (two test workers, two
    Airflow tasks on a fresh machine) leave a 0-byte file and both fail ("Downloaded file size (0)
    doesn't match expected Content Length"). Once a start succeeded a marker says so and nothing waits.
    """
    folder = cache_folder()
    marker = folder / f"resolved-{hashlib.sha256(packages.encode()).hexdigest()[:16]}"
    if marker.exists():
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "maven-resolve.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed, also if the start fails
        yield
        marker.touch()


def attach(spark: SparkSession) -> SparkSession:
    """The session, with this process's progress reporter watching it (``dmp.spark.progress``)."""
    progress.attach(spark)
    return spark


def get_spark(
    app_name: str = "dmp",
    master: str | None = None,
    conf: dict[str, str] | None = None,
) -> SparkSession:
    """Build (or reuse) the session.

    Outside spark-submit: master ``DMP_SPARK_MASTER`` or ``local[2]``, Delta jars resolved from Maven
    on first use and cached under ~/.ivy2*. Under spark-submit the master and packages given to
    spark-submit win, so the same job runs on standalone, YARN or Kubernetes unchanged. Either way
    the progress of the steps is reported (``DMP_PROGRESS``).
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
    s3a = env_setting("s3a") == "1"
    if s3a:
        settings.update(s3a_conf())
        # Under spark-submit too: spark.jars given here reach the driver's and executors' class
        # loader, the one the Delta jars of --packages are in.
        settings["spark.jars"] = logstore_jar()
    settings.update(conf or {})
    for key, value in settings.items():
        builder = builder.config(key, value)
    if under_spark_submit():
        return attach(builder.getOrCreate())
    builder = builder.master(master or env_setting("spark_master"))
    packages = spark_packages(s3a=s3a)
    builder = builder.config("spark.jars.packages", packages)
    with first_resolution(packages):
        spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(env_setting("spark_log_level"))
    return attach(spark)
