"""Treatment users -> channel keys (dmp.transforms.audience_ids) on small inline DataFrames."""

from __future__ import annotations

import hashlib
from datetime import date

from chispa import assert_df_equality

from dmp.contracts.channels import Channel
from dmp.spark.schemas import AUDIENCE_PACKS, IDENTITIES
from dmp.transforms.audience_ids import (
    filter_deliverable_treatment,
    filter_matched_keys,
    resolve_user_keys,
    users_by_reason,
    with_best_rank,
    with_id_rank,
)
from dmp.transforms.ids import INVALID_PHONE, NO_ID, ZERO_DEVICE_ID

# The phone UDF runs in Spark's Python workers: they must use this interpreter.

D1, D2 = date(2026, 3, 14), date(2026, 3, 15)
AD = Channel(
    type="ad",
    destination="file:///tmp/ads",
    id_types=["oaid", "idfa", "phone"],
    hash={"oaid": "md5", "idfa": "md5", "phone": "sha256"},
)
COUPON = Channel(type="coupon", destination="file:///tmp/c", id_types=["user_id"], hash={"user_id": "none"})


def md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


def sha256(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def identities(spark, rows: list[tuple[str, str, str]]):  # noqa: ANN001, ANN201
    return spark.createDataFrame([(u, t, v, "f", None) for u, t, v in rows], IDENTITIES)


def users(spark, *ids: str):  # noqa: ANN001, ANN201
    return spark.createDataFrame([(u,) for u in ids], "user_id string")


def test_only_treatment_of_a_deliverable_pack(spark) -> None:
    def row(seg: str, day: date, user: str, group: str, ok: bool = True) -> tuple:
        return (seg, day, user, group, 1.0, "r", "h", "rule", ok, None)

    packs = spark.createDataFrame(
        [
            row("spring", D1, "u1", "treatment"),
            row("spring", D1, "u1", "treatment"),  # a duplicate never doubles a user
            row("spring", D1, "u2", "holdout"),
            row("spring", D2, "u3", "treatment"),
            row("autumn", D1, "u4", "treatment"),
            row("tiny", D1, "u5", "treatment", ok=False),
        ],
        AUDIENCE_PACKS,
    )
    assert_df_equality(
        filter_deliverable_treatment(packs, "spring", D1), users(spark, "u1"), ignore_nullable=True
    )
    assert filter_deliverable_treatment(packs, "tiny", D1).count() == 0


def test_id_rank_follows_the_channel_preference(spark) -> None:
    df = spark.createDataFrame(
        [("a", "phone"), ("b", "oaid"), ("c", "email")], "user_id string, id_type string"
    )
    got = {r["user_id"]: r["id_rank"] for r in with_id_rank(df, ["oaid", "idfa", "phone"]).collect()}
    assert got == {"a": 2, "b": 0, "c": None}


def test_best_rank_is_the_best_valid_id(spark) -> None:
    df = spark.createDataFrame(
        [("u1", 0, None), ("u1", 2, "+86"), ("u2", 1, None), ("u3", None, None)],
        "user_id string, id_rank int, norm_value string",
    )
    got = {(r["user_id"], r["id_rank"]): r["best_rank"] for r in with_best_rank(df).collect()}
    assert got == {("u1", 0): 2, ("u1", 2): 2, ("u2", 1): None, ("u3", None): None}


def test_most_preferred_valid_id_type_wins_and_unmatched_have_a_reason(spark) -> None:
    ids = identities(
        spark,
        [
            ("u1", "oaid", " AB12-0001 "),
            ("u1", "phone", "13800138000"),  # less preferred: not sent
            ("u2", "idfa", "e2c56db5dffb48d2b060d0f5a71096e0"),  # two devices -> two rows
            ("u2", "idfa", "6d92078a-8246-4ba4-ae5b-76104861e7dc"),
            ("u3", "oaid", "00000000-0000"),  # limit ad tracking: falls back to the phone
            ("u3", "phone", "+86 139-0013-9000"),
            ("u4", "phone", "12345"),  # only an invalid value
            ("u5", "email", "a@b.c"),  # a type the channel does not accept
            ("u6", "oaid", "00000000"),  # invalid oaid outranks the invalid phone as the reason
            ("u6", "phone", "1"),
            ("u9", "oaid", "not-in-the-pack"),
        ],
    )
    resolved = resolve_user_keys(users(spark, "u1", "u2", "u3", "u4", "u5", "u6"), ids, AD)
    got = {tuple(r) for r in resolved.select("user_id", "id_type", "user_key", "reason").collect()}
    assert got == {
        ("u1", "oaid", md5("ab12-0001"), None),
        ("u2", "idfa", md5("E2C56DB5-DFFB-48D2-B060-D0F5A71096E0"), None),
        ("u2", "idfa", md5("6D92078A-8246-4BA4-AE5B-76104861E7DC"), None),
        ("u3", "phone", sha256("+8613900139000"), None),
        ("u4", None, None, INVALID_PHONE),
        ("u5", None, None, NO_ID),
        ("u6", None, None, ZERO_DEVICE_ID),
    }
    by_reason = {r["reason"]: r["users"] for r in users_by_reason(resolved).collect()}
    assert by_reason == {None: 3, INVALID_PHONE: 1, NO_ID: 1, ZERO_DEVICE_ID: 1}
    keys = filter_matched_keys(resolved)
    assert keys.columns == ["id_type", "user_key"] and keys.count() == 4


def test_user_id_channel_sends_our_own_ids(spark) -> None:
    resolved = resolve_user_keys(users(spark, "u1", "u2"), identities(spark, [("u1", "oaid", "x")]), COUPON)
    got = {tuple(r) for r in resolved.select("user_id", "id_type", "user_key", "reason").collect()}
    assert got == {("u1", "user_id", "u1", None), ("u2", "user_id", "u2", None)}
