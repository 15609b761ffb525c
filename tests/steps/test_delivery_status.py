"""Every reader of ops/deliveries agrees on "was this pack delivered?" (dmp.contracts.status).

One pack whose attempt 1 succeeded and attempt 2 failed (downstream may hold half a folder: NOT
delivered) and a control pack whose latest attempt succeeded after a failure (delivered), read by
delivery's own history, evaluation, the uplift DAG's planner and ``dmp summary``.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from dmp.cli.ops import collect_summary
from dmp.contracts import tables
from dmp.contracts.status import DeliveryStatus
from dmp.orchestration.deltaread import delta_rows
from dmp.orchestration.planning import due_evaluations
from dmp.spark.schemas import DELIVERIES_SCHEMA
from dmp.steps.deliver import attempt_history, delivered_dates
from dmp.steps.evaluate import delivered_channels, successful_deliveries

D1 = date(2026, 3, 14)
AT = datetime(2026, 3, 15, 6, 0)
FOLDER = "file:///nowhere/jd_ads/{segment}/2026-03-14"


def attempt(segment: str, number: int, status: str) -> list[tuple]:
    """ops/deliveries rows of one attempt: files + manifest when it succeeded, one ``none`` row else."""
    folder = FOLDER.format(segment=segment)
    if status == "success":
        files = [
            ("full", f"{folder}/full/part-00000.csv.gz", 5, "a" * 64),
            ("manifest", f"{folder}/manifest.json", None, "b" * 64),
        ]
    else:
        files = [("none", folder, None, None)]
    return [
        (
            segment,
            "jd_ads",
            D1,
            number,
            kind,
            path,
            rows,
            sha,
            status,
            AT,
            None if status == "success" else "boom",
        )
        for kind, path, rows, sha in files
    ]


def write_deliveries(spark, lake: str) -> None:  # noqa: ANN001
    rows = attempt("spring", 1, "success") + attempt("spring", 2, "failed")
    rows += attempt("control", 1, "failed") + attempt("control", 2, "success")
    spark.createDataFrame(rows, DELIVERIES_SCHEMA).write.format("delta").save(
        tables.table_path(lake, tables.DELIVERIES)
    )


def test_all_readers_agree_a_later_failed_attempt_undoes_a_delivery(spark, lake) -> None:
    write_deliveries(spark, lake)

    # Delivery's own history (what an incremental diff may build on).
    spring = attempt_history(spark, lake, "spring", "jd_ads")
    control = attempt_history(spark, lake, "control", "jd_ads")
    assert spring == {D1: (2, DeliveryStatus.FAILED)} and delivered_dates(spring) == []
    assert control == {D1: (2, DeliveryStatus.SUCCESS)} and delivered_dates(control) == [D1]

    # Evaluation (which packs reached a channel).
    assert successful_deliveries(spark, lake, "spring", D1, D1) == []
    assert successful_deliveries(spark, lake, "control", D1, D1) == [(D1, "jd_ads")]
    assert delivered_channels(spark, lake, "spring", D1) == []
    assert delivered_channels(spark, lake, "control", D1) == ["jd_ads"]

    # The uplift DAG's planner, on rows read without Spark.
    rows = delta_rows(tables.table_path(lake, tables.DELIVERIES))
    assert len(rows) == 6
    due = due_evaluations(rows, {"spring": 14, "control": 14}, as_of=D1 + timedelta(days=14))
    assert due == [{"segment": "control", "run_date": "2026-03-14", "window_days": "14"}]

    # dmp summary.
    status = {
        (d["segment"], d["channel"], d["run_date"]): d["status"] for d in collect_summary(lake)["deliveries"]
    }
    assert status == {
        ("spring", "jd_ads", "2026-03-14"): "failed",
        ("control", "jd_ads", "2026-03-14"): "success",
    }


def test_no_deliveries_table_means_nothing_delivered(spark, lake) -> None:
    assert attempt_history(spark, lake, "spring", "jd_ads") == {}
    assert successful_deliveries(spark, lake, "spring", D1, D1) == []
    assert due_evaluations(delta_rows(tables.table_path(lake, tables.DELIVERIES)), {}, D1) == []
    assert collect_summary(lake)["deliveries"] == []
