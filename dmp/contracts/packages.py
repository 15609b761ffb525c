"""The Maven packages (and the one jar of our own) every Spark application of dmp needs, found
without importing pyspark.

The local session (``dmp.spark.session``) and spark-submit from Airflow (``dmp.orchestration``)
must ask for exactly the same Delta and hadoop-aws jars; both read the coordinates here. Package
metadata and the pip pyspark's jar folder are enough to derive them, so the DAG side can build a
spark-submit command line while Airflow parses DAG files, without starting a JVM. An ``s3a://``
lake also needs the Delta log store compiled from the source below (:func:`logstore_jar`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import zipfile
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


# ------------------------------------------------------------------------- the S3 Delta log store

# Delta commits version N of a table by creating _delta_log/N.json, and relies on the store to let
# only one writer create it (delta.io "Storage configuration": mutual exclusion). On S3 the default
# S3SingleDriverLogStore guarantees that only inside one JVM; the DynamoDB log store needs
# DynamoDB. S3 (and MinIO) now do put-if-absent (If-None-Match: *), and Hadoop's S3A >= 3.4.2 sends
# it for createFile(path).overwrite(false) with the mandatory option
# fs.option.create.conditional.overwrite; the refusal (HTTP 412) comes at close(). Delta 4.4 has
# no log store that asks for it, hence this small one: every non-overwrite write is a conditional
# PUT, a 412 becomes the FileAlreadyExistsException Delta expects from a lost race (it then checks
# the winner's commit for conflicts and retries at the next version). A 412 on a write whose bytes
# are already there is our own PUT answered twice (the SDK retried after a lost response).
LOGSTORE_CLASS = "dmp.delta.ConditionalPutLogStore"
LOGSTORE_JAVA = """\
package dmp.delta;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.util.Arrays;
import java.util.Iterator;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FSDataOutputStreamBuilder;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

public class ConditionalPutLogStore extends io.delta.storage.HadoopFileSystemLogStore {
    static final String CONDITIONAL = "fs.option.create.conditional.overwrite";

    public ConditionalPutLogStore(Configuration hadoopConf) {
        super(hadoopConf);
    }

    public void write(Path path, Iterator<String> actions, Boolean overwrite, Configuration hadoopConf)
            throws IOException {
        FileSystem fs = path.getFileSystem(hadoopConf);
        ByteArrayOutputStream buffer = new ByteArrayOutputStream();
        while (actions.hasNext()) {
            buffer.write((actions.next() + "\\n").getBytes(StandardCharsets.UTF_8));
        }
        byte[] data = buffer.toByteArray();
        if (overwrite) {
            try (FSDataOutputStream out = fs.create(path, true)) {
                out.write(data);
            }
            return;
        }
        try {
            FSDataOutputStreamBuilder builder = fs.createFile(path);
            builder.overwrite(false);
            builder.must(CONDITIONAL, true);
            try (FSDataOutputStream out = builder.build()) {
                out.write(data);
            }
        } catch (org.apache.hadoop.fs.FileAlreadyExistsException e) {
            throw new FileAlreadyExistsException(path.toString());
        } catch (IOException e) {
            if (!preconditionFailed(e)) {
                throw e;
            }
            if (Arrays.equals(readAll(fs, path), data)) {
                return;
            }
            throw new FileAlreadyExistsException(path.toString());
        }
    }

    public Boolean isPartialWriteVisible(Path path, Configuration hadoopConf) {
        return false;
    }

    static boolean preconditionFailed(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            String message = String.valueOf(t.getMessage());
            if (t.getClass().getName().endsWith("RemoteFileChangedException")
                    || message.contains("Status Code: 412") || message.contains("412 Precondition Failed")) {
                return true;
            }
        }
        return false;
    }

    static byte[] readAll(FileSystem fs, Path path) throws IOException {
        try (InputStream in = fs.open(path)) {
            return in.readAllBytes();
        }
    }
}
"""
# Compiled against a stub of its Delta superclass (only the constructor is needed to compile), so
# the jar can be built before the Delta jars are resolved; the real class is used at run time.
_SUPERCLASS_STUB = """\
package io.delta.storage;

public abstract class HadoopFileSystemLogStore {
    public HadoopFileSystemLogStore(org.apache.hadoop.conf.Configuration hadoopConf) {}
}
"""


def _hadoop_client_jar() -> Path:
    found = sorted((Path(spark_home()) / "jars").glob("hadoop-client-api-*.jar"))
    if not found:
        raise RuntimeError(
            f"no hadoop-client-api jar in {spark_home()}/jars to compile the S3 log store against"
        )
    return found[-1]


def cache_folder() -> Path:
    """Where dmp keeps what it builds or resolves once per machine (the log store jar, resolve markers)."""
    return Path.home() / ".cache" / "dmp"


def logstore_jar(cache_dir: str | None = None) -> str:
    """The log store's jar, compiled once per source and Hadoop version (needs ``javac``: a JDK).

    Kept in ``cache_dir`` (default ``~/.cache/dmp``); the name carries a digest of the source and
    of the Hadoop client it was compiled against, so a change of either builds a new jar.
    """
    hadoop = _hadoop_client_jar()
    digest = hashlib.sha256((LOGSTORE_JAVA + _SUPERCLASS_STUB + hadoop.name).encode()).hexdigest()[:16]
    folder = Path(cache_dir) if cache_dir else cache_folder()
    jar = folder / f"dmp-delta-logstore-{digest}.jar"
    if jar.is_file():
        return str(jar)
    javac = shutil.which(
        "javac",
        path=os.path.join(os.environ.get("JAVA_HOME", ""), "bin") + os.pathsep + os.environ.get("PATH", ""),
    )
    if javac is None:
        raise RuntimeError(
            "an s3a:// lake needs the dmp Delta log store, compiled on first use: install a JDK (javac), "
            f"or build {jar.name} where one is and copy it to {folder}"
        )
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        (src / "dmp" / "delta").mkdir(parents=True)
        (src / "io" / "delta" / "storage").mkdir(parents=True)
        (src / "dmp" / "delta" / "ConditionalPutLogStore.java").write_text(LOGSTORE_JAVA)
        (src / "io" / "delta" / "storage" / "HadoopFileSystemLogStore.java").write_text(_SUPERCLASS_STUB)
        out = Path(tmp) / "classes"
        cmd = [javac, "-nowarn", "--release", "17", "-cp", str(hadoop), "-d", str(out)]
        done = subprocess.run(
            [*cmd, *map(str, src.rglob("*.java"))], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"compiling the dmp Delta log store with {javac} failed:\n{done.stderr.strip()}"
            )
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".{jar.name}.{os.getpid()}"
        with zipfile.ZipFile(partial, "w") as zf:
            for cls in (out / "dmp" / "delta").glob("*.class"):
                zf.write(cls, f"dmp/delta/{cls.name}")
        os.replace(partial, jar)  # atomic: concurrent first uses each build one, the last one stays
    return str(jar)
