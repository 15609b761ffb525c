"""Identity file lines (user -> oaid / idfa / imei / phone / email) -> checked, deduped identity rows.

Input lines are JSON objects ``{"user_id": ..., "id_type": ..., "id_value": ...}`` or CSV lines
``user_id,id_type,id_value`` (``is_csv``, from the file name). ``id_value`` is trimmed and otherwise
kept raw: case, spaces inside and phone formats are normalised at delivery (design.md §4), where the
channel says how. A row is quarantined for malformed JSON, a wrong CSV field count, a missing field
or an id_type outside ``ID_TYPES`` (matched exactly); the first of identical valid rows is accepted.
"""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from dmp.contracts.vocab import ID_TYPES
from dmp.transforms.columns import clean_text, reason_with_value
from dmp.transforms.quarantine import (
    ACCEPTED,
    DUPLICATE_IN_BATCH,
    MALFORMED_JSON,
    QUARANTINED,
    bad_field_count,
    missing_field,
)

IDENTITY_FIELDS: tuple[str, ...] = ("user_id", "id_type", "id_value")
CSV_HEADER = ",".join(IDENTITY_FIELDS)
_CORRUPT = "_corrupt"
_JSON_SCHEMA = StructType(
    [
        *[StructField(name, StringType(), True) for name in IDENTITY_FIELDS],
        StructField(_CORRUPT, StringType(), True),
    ]
)


def with_is_csv(lines_df: DataFrame) -> DataFrame:
    """``is_csv``: the line comes from a ``.csv`` file (any case); other files hold JSON lines."""
    return lines_df.withColumn("is_csv", F.lower(F.col("source_file")).endswith(".csv"))


def filter_csv_headers(lines_df: DataFrame) -> DataFrame:
    """Drop the ``user_id,id_type,id_value`` header lines of CSV files (any case, spaces ignored)."""
    header = F.lower(F.regexp_replace("value", r"\s", "")) == CSV_HEADER
    return lines_df.filter(~(F.col("is_csv") & header))


def parse_identity_lines(lines_df: DataFrame) -> DataFrame:
    """``value, source_file, is_csv`` -> ``raw, source_file, parse_error, user_id, id_type, id_value`` (strings)."""
    parsed = F.from_json("value", _JSON_SCHEMA, {"columnNameOfCorruptRecord": _CORRUPT})
    parts = F.split("value", ",", -1)
    csv_error = F.when(F.size(parts) != len(IDENTITY_FIELDS), bad_field_count(F.size(parts)))
    json_error = F.when(F.col("_j").isNull() | F.col(f"_j.{_CORRUPT}").isNotNull(), F.lit(MALFORMED_JSON))
    fields = {
        name: F.when(F.col("is_csv"), F.try_element_at(parts, F.lit(i + 1))).otherwise(F.col(f"_j.{name}"))
        for i, name in enumerate(IDENTITY_FIELDS)
    }
    return lines_df.withColumn("_j", F.when(~F.col("is_csv"), parsed)).select(
        F.col("value").alias("raw"),
        "source_file",
        F.when(F.col("is_csv"), csv_error).otherwise(json_error).alias("parse_error"),
        *[clean_text(col).alias(name) for name, col in fields.items()],
    )


def with_identity_reason(parsed_df: DataFrame) -> DataFrame:
    """``reason``: first failed check (null = valid). id_type must be one of ID_TYPES as is."""
    checks = [
        F.col("parse_error"),
        *[F.when(F.col(name).isNull(), F.lit(missing_field(name))) for name in IDENTITY_FIELDS],
        F.when(~F.col("id_type").isin(*ID_TYPES), reason_with_value("unknown_id_type", F.col("id_type"))),
    ]
    return parsed_df.withColumn("reason", F.coalesce(*checks)).drop("parse_error")


def with_identity_status(checked_df: DataFrame) -> DataFrame:
    """``status``: accepted (first of each distinct user/type/value), duplicate_in_batch or quarantined."""
    first = Window.partitionBy(*IDENTITY_FIELDS).orderBy("source_file", "raw")
    rank = F.when(F.col("reason").isNull(), F.row_number().over(first))
    return checked_df.withColumn(
        "status",
        F.when(F.col("reason").isNotNull(), F.lit(QUARANTINED))
        .when(rank == 1, F.lit(ACCEPTED))
        .otherwise(F.lit(DUPLICATE_IN_BATCH)),
    )


def to_identity_rows(classified_df: DataFrame, ingested_at: datetime) -> DataFrame:
    """Accepted rows in the ``silver/identities`` layout."""
    return classified_df.filter(F.col("status") == ACCEPTED).select(
        *IDENTITY_FIELDS, "source_file", F.lit(ingested_at).cast("timestamp").alias("ingested_at")
    )
