"""The Maven packages every Spark application of dmp needs, found without importing pyspark.

The local session (``dmp.spark.session``) and spark-submit from Airflow (``dmp.orchestration``)
must ask for exactly the same Delta and hadoop-aws jars; both read the coordinates here. Package
metadata and the pip pyspark's jar folder are enough to derive them, so the DAG side can build a
spark-submit command line while Airflow parses DAG files, without starting a JVM.
"""

from __future__ import annotations

from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path

SCALA_VERSION = "2.13"
# Used when the pyspark jars cannot be listed (a pyspark-client-only install).
FALLBACK_HADOOP_VERSION = "3.4.1"


def spark_home() -> str:
    """The pip pyspark's folder: it holds bin/spark-submit, bin/spark-class and the jars."""
    spec = find_spec("pyspark")
    if not spec or not spec.submodule_search_locations:
        raise RuntimeError("pyspark is not installed in this Python environment")
    return str(Path(next(iter(spec.submodule_search_locations))))


def delta_package() -> str:
    """Maven coordinate of the Delta jar matching the installed pyspark and delta-spark."""
    spark_mm = ".".join(version("pyspark").split(".")[:2])
    return f"io.delta:delta-spark_{spark_mm}_{SCALA_VERSION}:{version('delta-spark')}"


def hadoop_aws_package() -> str:
    """hadoop-aws for ``s3a://`` lakes, matching the Hadoop client bundled with pyspark."""
    hadoop_version = FALLBACK_HADOOP_VERSION
    try:
        jars = Path(spark_home()) / "jars"
    except RuntimeError:
        jars = None
    client = next(jars.glob("hadoop-client-api-*.jar"), None) if jars else None
    if client:
        hadoop_version = client.name.removeprefix("hadoop-client-api-").removesuffix(".jar")
    return f"org.apache.hadoop:hadoop-aws:{hadoop_version}"


def spark_packages(s3a: bool = False) -> str:
    """The ``--packages`` / ``spark.jars.packages`` value: Delta, plus hadoop-aws for s3a lakes."""
    packages = [delta_package()]
    if s3a:
        packages.append(hadoop_aws_package())
    return ",".join(packages)
