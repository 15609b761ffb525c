"""The preview's profile transforms on inline DataFrames."""

from __future__ import annotations

from datetime import date

from dmp.transforms.profile import NO_VALUE, TOTAL, latest_packs, profile_counts, with_audience_flag


def test_profile_counts_per_dimension_with_arrays_and_nulls(spark) -> None:  # type: ignore[no-untyped-def]
    population_df = spark.createDataFrame(
        [("u1", "active", ["C1", "C2"]), ("u2", "active", ["C1"]), ("u3", None, [])],
        "user_id string, lifecycle_stage string, top_category_ids array<string>",
    )
    audience_df = spark.createDataFrame([("u1",), ("u3",), ("u3",), ("u9",)], "user_id string")
    flagged_df = with_audience_flag(population_df, audience_df)
    assert {r["user_id"]: r["in_audience"] for r in flagged_df.collect()} == {
        "u1": True,
        "u2": False,
        "u3": True,
    }
    counts = {
        (r["dimension"], r["value"]): (r["audience_users"], r["population_users"])
        for r in profile_counts(flagged_df, ["lifecycle_stage", "top_category_ids"]).collect()
    }
    assert counts == {
        (TOTAL, ""): (2, 3),
        ("lifecycle_stage", "active"): (1, 2),
        ("lifecycle_stage", NO_VALUE): (1, 1),
        ("top_category_ids", "C1"): (1, 2),
        ("top_category_ids", "C2"): (1, 1),
    }


def test_latest_packs_keeps_each_segments_latest_run_up_to_the_date(spark) -> None:  # type: ignore[no-untyped-def]
    d = date.fromisoformat
    packs_df = spark.createDataFrame(
        [
            ("a", d("2026-09-01"), "u1"),
            ("a", d("2026-09-03"), "u2"),
            ("a", d("2026-09-05"), "u3"),
            ("b", d("2026-09-02"), "u4"),
            ("mine", d("2026-09-03"), "u5"),
        ],
        "segment string, run_date date, user_id string",
    )
    rows = latest_packs(packs_df, d("2026-09-04"), None, exclude="mine").collect()
    assert sorted((r["segment"], r["run_date"], r["user_id"]) for r in rows) == [
        ("a", d("2026-09-03"), "u2"),
        ("b", d("2026-09-02"), "u4"),
    ]
    assert latest_packs(packs_df, None, [], exclude="mine").count() == 0
    assert {r["segment"] for r in latest_packs(packs_df, None, ["b"], exclude="mine").collect()} == {"b"}
