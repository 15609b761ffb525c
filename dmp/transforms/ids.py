"""Normalise and hash user ids the way ad platforms document it (design.md §4).

Before hashing: email trimmed + lower-cased; phone parsed with ``phonenumbers`` (default region CN)
and written E.164 (``+8613800138000``) or as the 11-digit mainland form (``13800138000``); imei and
oaid trimmed + lower-cased; idfa trimmed + upper-cased in 8-4-4-4-12 form; user_id as is. Digests
are lower-case hex. A value that cannot be normalised gets ``norm_value = null`` and an
``invalid_reason``; it is counted as unmatched and never delivered (raw or otherwise).

The platform profiles (``dmp/delivery/profiles/``) add their own rules on top of these (Google's
gmail dots, Meta's phone digits without ``+``, Tencent's IMEI form) as plain functions below; this
module imports pyspark only inside the Spark functions, so the plain half runs without Spark.

Spark column expressions do everything except phone parsing, which needs ``phonenumbers``: that one
runs as a vectorised (Arrow) pandas UDF over the phone rows only.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

import pandas as pd
import phonenumbers

if TYPE_CHECKING:  # pyspark is imported lazily: the plain-Python half runs in `dmp pull` without Spark
    from pyspark.sql import Column, DataFrame
    from pyspark.sql.types import StructType

DEFAULT_REGION = "CN"
PHONE_FORMATS = ("e164", "cn11")

# Reasons a raw value is not usable (reported as "unmatched by reason" in manifests).
INVALID_EMPTY = "empty_value"
INVALID_EMAIL = "invalid_email"
INVALID_PHONE = "invalid_phone"
PHONE_NOT_CN = "phone_not_cn"
INVALID_IDFA = "invalid_idfa"
INVALID_IMEI = "invalid_imei"  # platform profiles only: not 14/15 characters of 0-9a-f
ZERO_DEVICE_ID = "zero_device_id"  # limit-ad-tracking devices report an all-zero IDFA/OAID
NO_ID = "no_id"  # the user has no id of any type the channel accepts

_UUID_HEX = re.compile(r"^[0-9A-F]{32}$")
_ZERO_ID = re.compile(r"^[0-]+$")


# ---------------------------------------------------------------- plain Python (reference + tests)


def normalise_phone(raw: str | None, phone_format: str = "e164", region: str = DEFAULT_REGION) -> str | None:
    """E.164 or cn11 form of a phone number, or None when it is not a valid number."""
    value, _reason = normalise_phone_reason(raw, phone_format, region)
    return value


def normalise_phone_reason(
    raw: str | None, phone_format: str = "e164", region: str = DEFAULT_REGION
) -> tuple[str | None, str | None]:
    if phone_format not in PHONE_FORMATS:
        raise ValueError(f"phone_format must be one of {PHONE_FORMATS}, got {phone_format!r}")
    if raw is None or not raw.strip():
        return None, INVALID_EMPTY
    try:
        number = phonenumbers.parse(raw.strip(), region)
    except phonenumbers.NumberParseException:
        return None, INVALID_PHONE
    if not phonenumbers.is_valid_number(number):
        return None, INVALID_PHONE
    if phone_format == "e164":
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None
    if number.country_code != 86:
        return None, PHONE_NOT_CN
    return phonenumbers.national_significant_number(number), None


def normalise_value(
    id_type: str, raw: str | None, phone_format: str = "e164"
) -> tuple[str | None, str | None]:
    """(normalised value, None) or (None, invalid reason). Mirrors :func:`with_normalised_id`."""
    if raw is None:
        return None, INVALID_EMPTY
    if id_type == "user_id":
        return (raw, None) if raw != "" else (None, INVALID_EMPTY)
    if id_type == "phone":
        return normalise_phone_reason(raw, phone_format)
    value = raw.strip()
    if not value:
        return None, INVALID_EMPTY
    if id_type == "email":
        value = value.lower()
        return (value, None) if re.fullmatch(r"[^@\s]+@[^@\s]+", value) else (None, INVALID_EMAIL)
    if id_type in ("oaid", "imei"):
        value = value.lower()
        return (None, ZERO_DEVICE_ID) if id_type == "oaid" and _ZERO_ID.match(value) else (value, None)
    if id_type == "idfa":
        compact = value.upper().replace("-", "")
        if not _UUID_HEX.match(compact):
            return None, INVALID_IDFA
        if _ZERO_ID.match(compact):
            return None, ZERO_DEVICE_ID
        return f"{compact[:8]}-{compact[8:12]}-{compact[12:16]}-{compact[16:20]}-{compact[20:]}", None
    raise ValueError(f"unknown id type {id_type!r}")


def hash_value(value: str, algo: str) -> str:
    if algo == "md5":
        return hashlib.md5(value.encode("utf-8")).hexdigest()
    if algo == "sha256":
        return hashlib.sha256(value.encode("utf-8")).hexdigest()
    if algo == "none":
        return value
    raise ValueError(f"hash must be md5, sha256 or none, got {algo!r}")


# ------------------------------------------- plain Python: platform rules (dmp/delivery/profiles/)
# Each takes a raw (or already normalised) value and returns (value, None) or (None, reason), like
# normalise_value: applied to normalise_value's own output they return the same value again, so a
# caller may pass what Spark's with_normalised_id produced or the raw value.

_IMEI = re.compile(r"^[0-9a-f]{14,15}$")  # 15 IMEI digits, or the 14 hex digits of a MEID
_GMAIL_DOMAINS = ("gmail.com", "googlemail.com")


def normalise_imei_strict(raw: str | None) -> tuple[str | None, str | None]:
    """Tencent's IMEI form: trimmed, lower-case, 14 or 15 characters of ``0-9a-f``, not all zero.

    Tencent's HASH_IMEI example hashes the 14-character MEID ``a000002c9060f7``; anything else
    (a serial number, a MAC address pasted into the IMEI column) cannot match and is dropped.
    """
    value, reason = normalise_value("imei", raw)
    if value is None:
        return None, reason
    if not _IMEI.match(value):
        return None, INVALID_IMEI
    return (None, ZERO_DEVICE_ID) if _ZERO_ID.match(value) else (value, None)


def normalise_email_google(raw: str | None) -> tuple[str | None, str | None]:
    """Google Customer Match: trimmed, lower-case, dots removed before ``@gmail.com`` / ``@googlemail.com``.

    Gmail ignores dots in the local part, so ``jane.doe@`` and ``janedoe@`` are one mailbox and must
    hash alike. A ``+suffix`` is kept: Google's own normalisation sample keeps it, and dropping it
    would merge addresses for providers where ``+`` is significant.
    """
    value, reason = normalise_value("email", raw)
    if value is None:
        return None, reason
    local, _, domain = value.rpartition("@")
    if domain in _GMAIL_DOMAINS:
        local = local.replace(".", "")
        if not local:
            return None, INVALID_EMAIL
    return f"{local}@{domain}", None


def normalise_phone_digits(raw: str | None, region: str = DEFAULT_REGION) -> tuple[str | None, str | None]:
    """Meta's phone form: country code and national number as digits, no ``+`` (``8613800138000``).

    Parsed with ``phonenumbers`` like every other phone form, so a number that is not valid for its
    country (``+0000000000``, too short) is dropped, never hashed.
    """
    value, reason = normalise_phone_reason(raw, "e164", region)
    return (value.lstrip("+"), None) if value is not None else (None, reason)


# ---------------------------------------------------------------- Spark


def _phone_result() -> StructType:
    from pyspark.sql.types import StringType, StructField, StructType

    return StructType([StructField("value", StringType()), StructField("reason", StringType())])


def _phone_udf(phone_format: str):  # noqa: ANN202 - returns a pandas_udf
    from pyspark.sql import functions as F

    @F.pandas_udf(_phone_result())
    def normalise_phones(raw: pd.Series) -> pd.DataFrame:
        # The same raw string often repeats (shared family phones, re-sent files): parse each once.
        parsed = {v: normalise_phone_reason(v, phone_format) for v in pd.unique(raw.dropna())}
        pairs = [parsed[v] if not pd.isna(v) else (None, INVALID_EMPTY) for v in raw]
        return pd.DataFrame(pairs, columns=["value", "reason"], dtype=object)

    return normalise_phones


def _normalised_expr(id_type: Column, raw: Column) -> tuple[Column, Column]:
    """(value, reason) column expressions for every id type except phone."""
    from pyspark.sql import functions as F

    # Python's str.strip() semantics (incl. the ideographic space U+3000 common in CJK input).
    trimmed = F.regexp_replace(raw, r"(?U)^\s+|\s+$", "")
    lower = F.lower(trimmed)
    idfa_compact = F.regexp_replace(F.upper(trimmed), "-", "")
    idfa_dashed = F.concat_ws(
        "-",
        F.substring(idfa_compact, 1, 8),
        F.substring(idfa_compact, 9, 4),
        F.substring(idfa_compact, 13, 4),
        F.substring(idfa_compact, 17, 4),
        F.substring(idfa_compact, 21, 12),
    )
    is_zero = lower.rlike(r"^[0-]+$")
    reason = (
        F.when(raw.isNull() | ((id_type != "user_id") & (trimmed == "")) | (raw == ""), F.lit(INVALID_EMPTY))
        .when((id_type == "email") & ~lower.rlike(r"^[^@\s]+@[^@\s]+$"), F.lit(INVALID_EMAIL))
        .when((id_type == "idfa") & ~idfa_compact.rlike(r"^[0-9A-F]{32}$"), F.lit(INVALID_IDFA))
        .when(id_type.isin("idfa", "oaid") & is_zero, F.lit(ZERO_DEVICE_ID))
    )
    value = (
        F.when(id_type == "user_id", raw)
        .when(id_type.isin("email", "oaid", "imei"), lower)
        .when(id_type == "idfa", idfa_dashed)
    )
    return F.when(reason.isNull(), value), reason


def with_normalised_id(ids_df: DataFrame, phone_format: str = "e164") -> DataFrame:
    """Add ``norm_value`` and ``invalid_reason`` to rows of (…, id_type, id_value).

    Exactly one of the two is non-null per row. Phone rows go through the phonenumbers UDF; the
    rest are column expressions, so the UDF never sees device ids or emails.
    """
    from pyspark.sql import functions as F

    if phone_format not in PHONE_FORMATS:
        raise ValueError(f"phone_format must be one of {PHONE_FORMATS}, got {phone_format!r}")
    is_phone = F.col("id_type") == "phone"
    value, reason = _normalised_expr(F.col("id_type"), F.col("id_value"))
    others = ids_df.filter(~is_phone).withColumn("norm_value", value).withColumn("invalid_reason", reason)
    parsed = _phone_udf(phone_format)(F.col("id_value"))
    phones = (
        ids_df.filter(is_phone)
        .withColumn("_parsed", parsed)
        .withColumn("norm_value", F.col("_parsed.value"))
        .withColumn("invalid_reason", F.col("_parsed.reason"))
        .drop("_parsed")
    )
    return others.unionByName(phones)


def hash_col(value: Column, algo: str) -> Column:
    """Lower-case hex digest (Spark's md5/sha2 already return lower-case hex)."""
    from pyspark.sql import functions as F

    if algo == "md5":
        return F.md5(value)
    if algo == "sha256":
        return F.sha2(value, 256)
    if algo == "none":
        return value
    raise ValueError(f"hash must be md5, sha256 or none, got {algo!r}")


def user_key_col(id_type: Column, value: Column, hashes: dict[str, str]) -> Column:
    """Hash ``value`` with the algorithm the channel configured for its id type."""
    from pyspark.sql import functions as F

    expr: Column | None = None
    for typ, algo in hashes.items():
        branch = hash_col(value, algo)
        expr = F.when(id_type == typ, branch) if expr is None else expr.when(id_type == typ, branch)
    if expr is None:
        raise ValueError("no hash algorithms configured")
    return expr
