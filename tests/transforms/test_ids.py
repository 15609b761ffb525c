"""Normalisation + hashing against published examples (Meta CAPI, UID2) and the CN formats."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from dmp.transforms.ids import (
    INVALID_EMAIL,
    INVALID_EMPTY,
    INVALID_IDFA,
    INVALID_PHONE,
    PHONE_NOT_CN,
    ZERO_DEVICE_ID,
    hash_value,
    normalise_phone,
    normalise_value,
    user_key_col,
    with_normalised_id,
)

# The phone UDF runs in Spark's Python workers: they must use this interpreter (pandas, phonenumbers),
# not whatever "python3" is first on PATH. Set before the session fixture starts the SparkContext.

# Published: Meta Conversions API "customer information parameters" (em / ph examples).
META_EMAIL_IN = "John_Smith@gmail.com"
META_EMAIL_SHA256 = "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"
META_PHONE_NORMALISED = "16505551212"
META_PHONE_SHA256 = "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"
# Published: UID2 "Normalization and Encoding" (email and E.164 phone examples).
UID2_EMAIL_SHA256 = "b4c9a289323b21a01c3e940f150eb9b8c542587f1abfd8f0e1cc1ffc5e475514"  # user@example.com
UID2_PHONE_RAW = "+1 (234) 567-8901"
UID2_PHONE_E164 = "+12345678901"
UID2_PHONE_SHA256 = "10e6f0b47054a83359477dcb35231db6de5c69fb1816e1a6b98e192de9e5b9ee"
# RFC 1321 test suite: MD5("abc").
RFC1321_MD5_ABC = "900150983cd24fb0d6963f7d28e17f72"


def test_published_email_examples() -> None:
    norm, reason = normalise_value("email", "  " + META_EMAIL_IN + " ")
    assert (norm, reason) == ("john_smith@gmail.com", None)
    assert hash_value(norm, "sha256") == META_EMAIL_SHA256
    assert hash_value(normalise_value("email", " USER@Example.com")[0], "sha256") == UID2_EMAIL_SHA256


def test_published_phone_examples() -> None:
    assert hash_value(META_PHONE_NORMALISED, "sha256") == META_PHONE_SHA256
    assert normalise_phone(UID2_PHONE_RAW) == UID2_PHONE_E164
    assert hash_value(normalise_phone(UID2_PHONE_RAW), "sha256") == UID2_PHONE_SHA256
    assert hash_value("abc", "md5") == RFC1321_MD5_ABC


@pytest.mark.parametrize(
    "raw", ["13800138000", "138 0013 8000", "+86 138-0013-8000", "0086 13800138000", "(+86)13800138000"]
)
def test_cn_phone_forms(raw: str) -> None:
    assert normalise_phone(raw, "e164") == "+8613800138000"
    assert normalise_phone(raw, "cn11") == "13800138000"


def test_phone_invalid_and_foreign() -> None:
    assert normalise_value("phone", "12345", "e164") == (None, INVALID_PHONE)
    assert normalise_value("phone", "not a phone", "e164") == (None, INVALID_PHONE)
    assert normalise_value("phone", "   ", "e164") == (None, INVALID_EMPTY)
    assert normalise_value("phone", UID2_PHONE_RAW, "cn11") == (None, PHONE_NOT_CN)


def test_device_ids() -> None:
    assert normalise_value("imei", " 86-ABCDEF0123456 ") == ("86-abcdef0123456", None)
    assert normalise_value("oaid", " 1FC5B3E2-AB12-4C3D-9E8F-00A1B2C3D4E5") == (
        "1fc5b3e2-ab12-4c3d-9e8f-00a1b2c3d4e5",
        None,
    )
    assert normalise_value("oaid", "00000000-0000-0000-0000-000000000000") == (None, ZERO_DEVICE_ID)
    assert normalise_value("idfa", " e2c56db5-dffb-48d2-b060-d0f5a71096e0 ") == (
        "E2C56DB5-DFFB-48D2-B060-D0F5A71096E0",
        None,
    )
    assert normalise_value("idfa", "e2c56db5dffb48d2b060d0f5a71096e0") == (
        "E2C56DB5-DFFB-48D2-B060-D0F5A71096E0",
        None,
    )
    assert normalise_value("idfa", "not-an-idfa") == (None, INVALID_IDFA)
    assert normalise_value("idfa", "00000000-0000-0000-0000-000000000000") == (None, ZERO_DEVICE_ID)
    assert normalise_value("email", "no-at-sign") == (None, INVALID_EMAIL)
    assert normalise_value("user_id", "u0000123") == ("u0000123", None)
    # md5 of the normalised (upper-case, dashed) IDFA, as md5sum prints it.
    assert hash_value("E2C56DB5-DFFB-48D2-B060-D0F5A71096E0", "md5") == "2e4ec4a73f92089b69135bc8f189c9c8"


CASES = [
    # (id_type, raw, phone_format, expected norm, expected reason)
    ("email", "  John_Smith@GMAIL.com\t", "e164", "john_smith@gmail.com", None),
    ("email", "\u3000user@example.com", "e164", "user@example.com", None),
    ("email", "broken", "e164", None, INVALID_EMAIL),
    ("phone", "138 0013 8000", "e164", "+8613800138000", None),
    ("phone", "+86 138-0013-8000", "cn11", "13800138000", None),
    ("phone", "+1 (234) 567-8901", "cn11", None, PHONE_NOT_CN),
    ("phone", "999", "e164", None, INVALID_PHONE),
    ("imei", " 35-209900-176148-1 ", "e164", "35-209900-176148-1", None),
    ("oaid", " AB12cd ", "e164", "ab12cd", None),
    ("oaid", "0000-0000", "e164", None, ZERO_DEVICE_ID),
    ("idfa", "e2c56db5dffb48d2b060d0f5a71096e0", "e164", "E2C56DB5-DFFB-48D2-B060-D0F5A71096E0", None),
    ("idfa", "xyz", "e164", None, INVALID_IDFA),
    ("idfa", "   ", "e164", None, INVALID_EMPTY),
    ("user_id", "u0000123", "e164", "u0000123", None),
]


@pytest.mark.parametrize("phone_format", ["e164", "cn11"])
def test_spark_normalisation_matches_python(spark, phone_format: str) -> None:
    cases = [c for c in CASES if c[2] == phone_format or c[1] != "phone"]
    rows = [(str(i), t, raw) for i, (t, raw, *_rest) in enumerate(cases)]
    df = spark.createDataFrame(rows, "row string, id_type string, id_value string")
    got = {
        r["row"]: (r["norm_value"], r["invalid_reason"])
        for r in with_normalised_id(df, phone_format).collect()
    }
    assert len(got) == len(rows)
    for i, (id_type, raw, fmt, norm, reason) in enumerate(cases):
        if fmt == phone_format:
            assert got[str(i)] == (norm, reason), (id_type, raw)
        # Python reference and Spark agree on every row, whatever the format.
        assert got[str(i)] == normalise_value(id_type, raw, phone_format), (id_type, raw)


def test_spark_hashes_match_published(spark) -> None:
    df = spark.createDataFrame(
        [("email", "john_smith@gmail.com"), ("phone", UID2_PHONE_E164), ("idfa", "abc")],
        "id_type string, norm_value string",
    )
    hashes = {"email": "sha256", "phone": "sha256", "idfa": "md5"}
    got = dict(
        df.select("id_type", user_key_col(F.col("id_type"), F.col("norm_value"), hashes).alias("k")).collect()
    )
    assert got == {"email": META_EMAIL_SHA256, "phone": UID2_PHONE_SHA256, "idfa": RFC1321_MD5_ABC}
