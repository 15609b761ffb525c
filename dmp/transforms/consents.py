"""Consent log lines -> checked consent events -> the latest decision per (user, purpose); and who of
a pack may be delivered to a channel (docs/privacy.md).

A consent event is a JSON line ``{"user_id", "purpose", "granted", "at", "source"}``: ``purpose``
one of ``CONSENT_PURPOSES``; ``granted`` true or false (JSON booleans, or the strings
``"true"``/``"false"``); ``at`` when the user decided (ISO-8601 with ``Z`` or an offset, no zone =
UTC, or epoch seconds / milliseconds, as event times); ``source`` optional (app, crm, …).

The latest event per (user, purpose) wins; at the same instant a withdrawal beats a grant (the
cautious reading of a contradictory log), then the smaller source and file name decide, so the
answer never depends on the order the files were read in. Re-reading an old log after a newer
one changes nothing: the table's rows compete with the new events by the same rule.
"""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from dmp.contracts.vocab import CONSENT_PURPOSES, NO_CONSENT, REVOKED
from dmp.transforms.columns import (
    clean_text,
    first_text_problem,
    is_unreadable_text,
    reason_with_value,
    without_bom,
)
from dmp.transforms.ingest import parse_event_time
from dmp.transforms.quarantine import (
    ACCEPTED,
    BAD_ENCODING,
    DUPLICATE_IN_BATCH,
    MALFORMED_JSON,
    QUARANTINED,
    missing_field,
    raw_kept,
)

CONSENT_FIELDS: tuple[str, ...] = ("user_id", "purpose", "granted", "at", "source")
REQUIRED_CONSENT_FIELDS: tuple[str, ...] = ("user_id", "purpose", "granted", "at")
# Longest text accepted per field (longer: field_too_long:<field>), as for events' ids.
CONSENT_MAX_CHARS: dict[str, int] = {"user_id": 128, "purpose": 64, "at": 64, "source": 128}
BAD_GRANTED = "bad_value:granted"
BAD_AT = "bad_timestamp:at"
_CORRUPT = "_corrupt"
_JSON_SCHEMA = StructType(
    [
        *[StructField(name, StringType(), True) for name in CONSENT_FIELDS],
        StructField(_CORRUPT, StringType(), True),
    ]
)
_GRANTED = {"true": True, "false": False}


def parse_consent_lines(lines_df: DataFrame) -> DataFrame:
    """``value, source_file`` -> ``raw, source_file, parse_error`` + the fields as cleaned text."""
    unreadable = is_unreadable_text(F.col("value"))
    parsed = F.from_json(without_bom(F.col("value")), _JSON_SCHEMA, {"columnNameOfCorruptRecord": _CORRUPT})
    error = F.when(unreadable, F.lit(BAD_ENCODING)).when(
        F.col("_j").isNull() | F.col(f"_j.{_CORRUPT}").isNotNull(), F.lit(MALFORMED_JSON)
    )
    return lines_df.withColumn("_j", parsed).select(
        raw_kept(F.col("value"), unreadable).alias("raw"),
        "source_file",
        error.alias("parse_error"),
        *[clean_text(F.col(f"_j.{name}")).alias(name) for name in CONSENT_FIELDS],
    )


def with_consent_reason(parsed_df: DataFrame) -> DataFrame:
    """``reason`` (first failed check, null = valid), ``granted_b`` (boolean) and ``at_ts`` (timestamp)."""
    granted = F.lower(F.col("granted"))
    at_ts = parse_event_time(F.col("at"))
    text = {name: F.col(name) for name in ("user_id", "purpose", "at", "source")}
    checks: list[Column] = [
        F.col("parse_error"),
        *[F.when(F.col(n).isNull(), F.lit(missing_field(n))) for n in REQUIRED_CONSENT_FIELDS],
        first_text_problem(text, CONSENT_MAX_CHARS),
        F.when(
            ~F.col("purpose").isin(*CONSENT_PURPOSES), reason_with_value("unknown_purpose", F.col("purpose"))
        ),
        F.when(~granted.isin(*_GRANTED), F.lit(BAD_GRANTED)),
        F.when(at_ts.isNull(), F.lit(BAD_AT)),
    ]
    return parsed_df.select(
        "*",
        F.coalesce(*checks).alias("reason"),
        (granted == "true").alias("granted_b"),
        at_ts.alias("at_ts"),
    ).drop("parse_error")


def with_consent_status(checked_df: DataFrame) -> DataFrame:
    """``status``: accepted (the first of identical valid events), duplicate_in_batch or quarantined."""
    same = Window.partitionBy("user_id", "purpose", "granted_b", "at_ts", "source").orderBy(
        "source_file", "raw"
    )
    rank = F.when(F.col("reason").isNull(), F.row_number().over(same))
    return checked_df.withColumn(
        "status",
        F.when(F.col("reason").isNotNull(), F.lit(QUARANTINED))
        .when(rank == 1, F.lit(ACCEPTED))
        .otherwise(F.lit(DUPLICATE_IN_BATCH)),
    )


def to_consent_events(classified_df: DataFrame, ingested_at: datetime) -> DataFrame:
    """Accepted events in the ``silver/consents`` layout (not yet reduced to the latest)."""
    return classified_df.filter(F.col("status") == ACCEPTED).select(
        "user_id",
        "purpose",
        F.col("granted_b").alias("granted"),
        F.col("at_ts").alias("at"),
        "source",
        "source_file",
        F.lit(ingested_at).cast("timestamp").alias("ingested_at"),
    )


def latest_consents(events_df: DataFrame) -> DataFrame:
    """One row per (user_id, purpose): the latest event; a withdrawal wins a tie (module docstring)."""
    order = Window.partitionBy("user_id", "purpose").orderBy(
        F.col("at").desc(),
        F.col("granted").asc(),  # false first
        F.col("source").asc_nulls_last(),
        F.col("source_file").asc_nulls_last(),
    )
    return events_df.withColumn("_n", F.row_number().over(order)).filter(F.col("_n") == 1).drop("_n")


def with_consent_reason_for(users_df: DataFrame, consents_df: DataFrame, purpose: str) -> DataFrame:
    """``users_df`` (a ``user_id`` column) plus ``consent_reason``: null when the user's latest decision
    for ``purpose`` grants it, ``revoked`` when it withdrew or refused it, ``no_consent`` when there
    is none. ``consents_df`` is ``silver/consents`` (already one row per user and purpose)."""
    decisions = consents_df.filter(F.col("purpose") == purpose).select("user_id", "granted")
    return (
        users_df.join(decisions, "user_id", "left")
        .withColumn(
            "consent_reason",
            F.when(F.col("granted").isNull(), F.lit(NO_CONSENT)).when(~F.col("granted"), F.lit(REVOKED)),
        )
        .drop("granted")
    )
