"""``dmp segments suggest --from-evaluation SEGMENT RUN_DATE`` end to end through typer's CliRunner:
an evaluation's report.json in, a validated (not built) spec of the kept sub-audience out, which
selects exactly that sub-audience; errors name the file and the field."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dmp.contracts.errors import DmpError
from dmp.contracts.specs import load_spec
from dmp.stats.subgroups import subgroup_table
from dmp.steps.report_store import report_location

R = date(2026, 3, 15)
SPEC = """\
name: spring_revisit
description: visited S001, did not buy
kind: store_revisit
scope: {store_ids: [S001]}
window_days: 14
behaviors: [view, cart_add]
holdout: 0.2
"""
STAGES = ("new", "active", "silent", "churned")


def campaign_users(seed: int = 5, n: int = 12000) -> pd.DataFrame:
    """A seeded campaign: +10 pts only for active users, -6 pts for silent ones."""
    rng = np.random.default_rng(seed)
    stage = np.array(STAGES)[rng.integers(0, 4, n)]
    group = np.where(rng.random(n) < 0.5, "treatment", "holdout")
    treated = group == "treatment"
    rate = 0.12 + 0.10 * ((stage == "active") & treated) - 0.06 * ((stage == "silent") & treated)
    return pd.DataFrame(
        {
            "user_id": [f"u{i:05d}" for i in range(n)],
            "group": group,
            "converted": (rng.random(n) < rate).astype(int),
            "lifecycle_stage": stage,
            "consumption_level": rng.integers(0, 6, n),
            "coupon_sensitivity": np.where(rng.random(n) < 0.4, np.nan, rng.random(n)),
            "is_cart_abandoner": rng.random(n) < 0.3,
            "top_category": rng.choice(["C01", "C02", "C03"], n),
        }
    )


def write_report(lake: str, report: dict) -> Path:
    folder = Path(report_location(lake, "spring_revisit", R))
    folder.mkdir(parents=True)
    (folder / "report.json").write_text(json.dumps(report, default=str))
    return folder / "report.json"


@pytest.fixture()
def dirs(tmp_path: Path) -> tuple[str, Path, Path]:
    lake = tmp_path / "lake"
    lake.mkdir()
    segments = tmp_path / "segments"
    segments.mkdir()
    (segments / "spring_revisit.yaml").write_text(SPEC)
    return str(lake), segments, tmp_path / "suggestions"


def _invoke(lake: str, segments: Path, out: Path, *extra: str):  # type: ignore[no-untyped-def]
    from dmp.cli import app

    args = ["segments", "suggest", "--from-evaluation", "spring_revisit", R.isoformat()]
    args += ["--out", str(out), "--lake", lake, "--segments", str(segments), *extra]
    return CliRunner().invoke(app, args)


def test_suggest_writes_a_spec_selecting_the_kept_subgroup(spark, dirs) -> None:  # type: ignore[no-untyped-def]
    from pyspark.sql import functions as F

    from dmp.transforms.where import where_col

    lake, segments, out = dirs
    users = campaign_users()
    block = subgroup_table(users)
    kept = {(r["tag"], r["subgroup"]) for r in block["rows"] if r["decision"] == "keep"}
    assert ("lifecycle_stage", "active") in kept and block["suggested_tag"] == "lifecycle_stage"
    write_report(lake, {"segment": "spring_revisit", "run_date": R.isoformat(), "subgroups": block})

    res = _invoke(lake, segments, out)
    assert res.exit_code == 0, res.output
    path = out / "spring_revisit_suggested.yaml"
    n_active = int((users["lifecycle_stage"] == "active").sum())
    assert (
        f"{path}: spring_revisit_suggested keeps lifecycle_stage = active ({n_active:,} of 12,000 users"
        in (" ".join(res.output.split()))
    )
    assert "validated, not built" in res.output
    assert not (segments / "spring_revisit_suggested.yaml").exists()  # not in the segments folder: not built

    spec = load_spec(path)
    assert spec.name == "spring_revisit_suggested" and spec.holdout == 0.2 and spec.scope is not None
    # the written condition, through the Spark column a build uses, selects exactly the active users
    tags_df = spark.createDataFrame(
        users[["user_id", "lifecycle_stage"]].assign(
            lifecycle_stage=lambda u: u["lifecycle_stage"].astype(str)
        )
    ).union(spark.createDataFrame([("nobody", None)], "user_id string, lifecycle_stage string"))
    selected = {
        r["user_id"] for r in tags_df.filter(where_col(spec.where)).select(F.col("user_id")).collect()
    }
    assert selected == set(users.loc[users["lifecycle_stage"] == "active", "user_id"])


def test_suggest_with_another_tag_and_report_folder(dirs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lake, segments, out = dirs
    block = subgroup_table(campaign_users())
    elsewhere = tmp_path / "byo_report"
    elsewhere.mkdir()
    (elsewhere / "report.json").write_text(
        json.dumps({"segment": "spring_revisit", "subgroups": block}, default=str)
    )
    # the effect is in active users only: no category is kept
    res = _invoke(lake, segments, out, "--report", str(elsewhere), "--tag", "top_category")
    assert res.exit_code != 0 and isinstance(res.exception, DmpError)
    assert str(res.exception) == (
        f"{elsewhere}/report.json: subgroups: no subgroup of 'top_category' is kept; nothing to suggest"
    )
    assert not out.exists()
    res = _invoke(lake, segments, out, "--report", str(elsewhere), "--tag", "lifecycle_stage")
    assert res.exit_code == 0, res.output
    assert load_spec(out / "spring_revisit_suggested.yaml").where.value == "active"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("report", "field"),
    [
        (None, "no evaluation of spring_revisit on 2026-03-15; run dmp evaluate first"),
        ({"segment": "spring_revisit", "uplift_abs": 0.01}, "subgroups: missing; re-run dmp evaluate"),
        (
            {
                "segment": "spring_revisit",
                "subgroups": {"note": "no subgroup table: lake/gold/user_tags does not exist"},
            },
            "subgroups: no subgroup table (no subgroup table: lake/gold/user_tags does not exist)",
        ),
        (
            {"segment": "autumn", "subgroups": {"rows": []}},
            "segment: the report is of 'autumn', expected 'spring_revisit'",
        ),
    ],
)
def test_errors_name_the_file_and_the_field(dirs, report: dict | None, field: str) -> None:  # type: ignore[no-untyped-def]
    lake, segments, out = dirs
    where = Path(report_location(lake, "spring_revisit", R)) / "report.json"
    if report is not None:
        write_report(lake, report)
    res = _invoke(lake, segments, out)
    assert res.exit_code != 0 and isinstance(res.exception, DmpError)
    assert str(res.exception) == f"{where}: {field}" or str(res.exception).startswith(f"{where}: {field}")
    assert not (out / "spring_revisit_suggested.yaml").exists()
