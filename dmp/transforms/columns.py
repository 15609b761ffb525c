"""Small column expressions the transforms share: text cleaning, reason values, dates, casts.

Raw landing text is padded and sometimes blank, so every parser cleans a field the same way
(``clean_text``) and quotes an offending value the same way in a quarantine ``reason``
(``reason_with_value``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from dmp.transforms.quarantine import control_characters, field_too_long

# Java regex ``\s``: the characters a blank line or a padded field may consist of.
WHITESPACE = " \t\n\x0b\x0c\r"
# A quarantine reason quotes at most this many characters of the offending value.
REASON_VALUE_MAX = 50
# Characters no id, code, time or number may hold (Java regex): Unicode Cc (C0/C1 controls: NUL, and a
# tab or line break *inside* a value; at the ends they are padding, trimmed by ``clean_text``), Cf
# (format: the bidi overrides U+202A-202E / U+2066-2069 that make an id display as another, zero-width
# U+200B-200D, a BOM U+FEFF, soft hyphen) and the line / paragraph separators U+2028 / U+2029, which
# split a line in many readers. Each makes two ids that look the same differ, or breaks a delivery file.
CONTROL_CHARACTERS_RE = r"[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]"
# What a lossy decoder puts where it could not read a byte: text holding it was damaged upstream.
REPLACEMENT_CHARACTER = "\ufffd"
BYTE_ORDER_MARK = "\ufeff"
# JSON escapes a decoder cannot keep (``has_lossy_json_escape``), Java regexes on the raw line.
_ESCAPED_BACKSLASH_RE = r"\\\\"  # the two characters \\ : an escaped backslash
_SURROGATE_PAIR_RE = r"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"  # high + low half
_LOSSY_ESCAPE_RE = r"\\u(?i:fffd|d[89a-f][0-9a-f]{2})"  # U+FFFD, or a surrogate half left alone


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


def is_unreadable_text(value: Column) -> Column:
    """The line's bytes are not valid UTF-8, or it holds U+FFFD (an earlier lossy decoding).

    Spark's text source does not decode: the bytes stay as read, so ``is_valid_utf8`` sees them.
    """
    return ~F.is_valid_utf8(value) | (F.instr(value, REPLACEMENT_CHARACTER) > 0)


def has_lossy_json_escape(value: Column) -> Column:
    """The JSON text holds ``\\ufffd`` or a UTF-16 surrogate escape without its other half.

    A decoder turns the first into U+FFFD and a lone surrogate into "?" (Java cannot write it as
    UTF-8), so the value stored would not be the value sent. Three passes, each simple: drop the
    escaped backslashes (every backslash left then starts an escape, so ``\\\\ud800`` is text, not
    an escape), drop the valid surrogate pairs (an emoji), then any surrogate escape left is alone.
    Only lines holding ``\\u`` at all pay for the passes.
    """
    unescaped = F.regexp_replace(value, _ESCAPED_BACKSLASH_RE, "")
    unpaired = F.regexp_replace(unescaped, _SURROGATE_PAIR_RE, "")
    return (F.instr(value, "\\u") > 0) & unpaired.rlike(_LOSSY_ESCAPE_RE)


def without_bom(value: Column) -> Column:
    """The line without a leading byte-order mark (the first line of a file saved "UTF-8 with BOM")."""
    return F.when(value.startswith(BYTE_ORDER_MARK), F.substring(value, 2, 1 << 30)).otherwise(value)


def first_text_problem(fields: Mapping[str, Column], max_chars: Mapping[str, int]) -> Column:
    """The first problem of cleaned text fields, null when none, in this order of precedence:
    ``field_too_long:<name>`` (longer than ``max_chars[name]`` characters) for any field, then
    ``control_characters:<name>`` (see CONTROL_CHARACTERS_RE); fields in the mapping's order.

    Lengths first: they are cheap, and a 10,000-character value is then never run through a regex.
    One regex over all the fields at once says whether any holds such a character; only then is each
    field searched to name it (one regex run per row instead of one per field, on clean rows).
    """
    too_long = [
        F.when(F.length(col) > max_chars[name], F.lit(field_too_long(name))) for name, col in fields.items()
    ]
    # The separator is a space, not a control character, so joining adds none.
    any_control = F.concat_ws(" ", *fields.values()).rlike(CONTROL_CHARACTERS_RE)
    control = F.coalesce(
        *[
            F.when(col.rlike(CONTROL_CHARACTERS_RE), F.lit(control_characters(name)))
            for name, col in fields.items()
        ]
    )
    return F.coalesce(*too_long, F.when(any_control, control))


def lit_date(d: date) -> Column:
    """A DATE literal (``F.lit(date)`` alone would let Spark pick the type from the context)."""
    return F.lit(d).cast("date")


def select_schema(df: DataFrame, schema: StructType) -> DataFrame:
    """Exactly the schema's columns, in its order and with its types: the last step of a builder."""
    return df.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in schema.fields])
