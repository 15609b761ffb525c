"""Small Delta tables read outside Spark, with delta-rs (``deltalake``): milliseconds, not a JVM.

The DAGs' light tasks (which deliveries are due, which dates are aggregated) and ``dmp summary``
read the lake this way. delta-rs replays the log (checkpoints, removes, deletion vectors) the way
Spark does, so these readers agree with Spark on every table Spark wrote.

Lakes on S3: ``s3a://`` (Spark's scheme) is read as ``s3://`` with the standard AWS environment
(``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3`` for MinIO and other S3-compatible stores, keys,
region); plain-HTTP endpoints are allowed because that is how a local MinIO is reached.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # deltalake and pyarrow load only when a table is read, never at DAG parse time
    from deltalake import DeltaTable

# Environment variable -> delta-rs storage option, first one set wins.
_S3_ENV: dict[str, tuple[str, ...]] = {
    "AWS_ENDPOINT_URL": ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
    "AWS_ACCESS_KEY_ID": ("AWS_ACCESS_KEY_ID",),
    "AWS_SECRET_ACCESS_KEY": ("AWS_SECRET_ACCESS_KEY",),
    "AWS_SESSION_TOKEN": ("AWS_SESSION_TOKEN",),
    "AWS_REGION": ("AWS_REGION", "AWS_DEFAULT_REGION"),
}


def table_location(table: str, env: Mapping[str, str] | None = None) -> tuple[str, dict[str, str]]:
    """(uri, storage options) for delta-rs: local paths made absolute, ``s3a://`` read as ``s3://``."""
    env = os.environ if env is None else env
    if "://" not in table:
        return os.path.abspath(table), {}
    uri = re.sub(r"^s3a://", "s3://", table)
    if not uri.startswith("s3://"):
        return uri, {}
    options: dict[str, str] = {}
    for opt, names in _S3_ENV.items():
        value = next((env[v] for v in names if env.get(v)), None)
        if value:
            options[opt] = value
    if options.get("AWS_ENDPOINT_URL", "").startswith("http://"):
        options["AWS_ALLOW_HTTP"] = "true"
    if "AWS_ENDPOINT_URL" in options and "AWS_REGION" not in options:
        options["AWS_REGION"] = "us-east-1"  # S3-compatible stores ignore it, the signer needs one
    return uri, options


def open_table(table: str) -> DeltaTable | None:
    """The table at ``table`` (path or URI); None when there is no Delta table there yet."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    uri, options = table_location(table)
    try:
        return DeltaTable(uri, storage_options=options or None)
    except TableNotFoundError:
        return None


def _has_deletion_vectors(dt: DeltaTable) -> bool:
    return "deletionVectors" in (dt.protocol().reader_features or [])


def delta_rows(table: str, columns: list[str] | None = None) -> list[dict[str, Any]]:
    """All rows of a small Delta table as dicts (partition columns as their Delta type); [] if absent."""
    import pyarrow as pa

    dt = open_table(table)
    if dt is None:
        return []
    return pa.table(dt.scan(columns=columns)).to_pylist()


def delta_count(table: str, partition: Mapping[str, str] | None = None) -> int:
    """Row count, from the log's per-file statistics when they are exact (no data read).

    ``partition`` keeps the rows whose partition columns equal the given values (compared as text).
    Files without statistics, or deleted rows recorded in deletion vectors, are counted by a scan.
    """
    import pyarrow as pa

    dt = open_table(table)
    if dt is None:
        return 0
    wanted = {k: str(v) for k, v in (partition or {}).items()}
    actions = pa.table(dt.get_add_actions(flatten=True)).to_pylist()
    exact = not _has_deletion_vectors(dt) and all(a.get("num_records") is not None for a in actions)
    if exact:
        return sum(
            int(a["num_records"])
            for a in actions
            if all(str(a.get(f"partition.{k}")) == v for k, v in wanted.items())
        )
    columns = list(wanted) or [dt.schema().fields[0].name]
    rows = pa.table(dt.scan(columns=columns)).to_pylist()
    return sum(1 for r in rows if all(str(r[k]) == v for k, v in wanted.items()))


def delta_partition_values(table: str, column: str) -> list[str]:
    """Distinct values of a partition column (sorted, as text), from the log only; [] if absent."""
    dt = open_table(table)
    if dt is None:
        return []
    return sorted({str(p[column]) for p in dt.partitions() if column in p})
