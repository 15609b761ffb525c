"""Small column expressions the transforms share: text cleaning, reason values, dates, casts.

Raw landing text is padded and sometimes blank, so every parser cleans a field the same way
(``clean_text``) and quotes an offending value the same way in a quarantine ``reason``
(``reason_with_value``).
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

# Java regex ``\s``: the characters a blank line or a padded field may consist of.
WHITESPACE = " \t\n\x0b\x0c\r"
# A quarantine reason quotes at most this many characters of the offending value.
REASON_VALUE_MAX = 50


def strip_whitespace(col: Column | str) -> Column:
    """Both ends trimmed of WHITESPACE (``btrim``: a plain scan, several times cheaper than a regex)."""
    return F.btrim(col, F.lit(WHITESPACE))


def is_blank(col: Column | str) -> Column:
    """The text is empty or whitespace only."""
    return strip_whitespace(col) == ""


def clean_text(col: Column) -> Column:
    """Trim whitespace (incl. tabs/CR) and turn empty strings into null."""
    trimmed = strip_whitespace(col)
    return F.when(trimmed != "", trimmed)


def short_value(col: Column) -> Column:
    """The first REASON_VALUE_MAX characters: a reason stays short whatever the row holds."""
    return F.substring(col, 1, REASON_VALUE_MAX)


def reason_with_value(prefix: str, col: Column) -> Column:
    """``<prefix>:<value>`` (e.g. ``unknown_event_type:teleport``), the value cut to REASON_VALUE_MAX."""
    return F.concat(F.lit(f"{prefix}:"), short_value(col))


def lit_date(d: date) -> Column:
    """A DATE literal (``F.lit(date)`` alone would let Spark pick the type from the context)."""
    return F.lit(d).cast("date")


def select_schema(df: DataFrame, schema: StructType) -> DataFrame:
    """Exactly the schema's columns, in its order and with its types: the last step of a builder."""
    return df.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in schema.fields])
