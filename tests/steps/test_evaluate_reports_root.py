"""Uplift reports live next to the data: ``<lake>/reports/<segment>/<run_date>/`` (local or S3 on a
real MinIO), never in the driver's working directory; ``dmp summary`` finds them there; the
evaluation window is the spec's ``attribution_days``, not its look-back ``window_days``."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dmp.cli.ops import collect_summary
from dmp.contracts import tables
from dmp.contracts.errors import DmpError
from dmp.spark import lake as lk
from dmp.steps import report_store
from tests.steps.test_evaluate import S001, SPEC, R, _byo_csv, write_tiny_lake
from tests.support.s3server import MinioServer

# The tiny lake's spring_revisit spec, looking back 14 days but judged on the 3 days after R.
SPEC_3 = SPEC + "attribution_days: 3\n"
DAY = R.isoformat()


@pytest.fixture(scope="module")
def tiny(spark, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:  # noqa: ANN001
    root = tmp_path_factory.mktemp("reports_root")
    lake = str(root / "lake")
    write_tiny_lake(spark, lake)
    segments = root / "segments"
    segments.mkdir()
    (segments / "spring_revisit.yaml").write_text(SPEC_3)
    return lake, str(segments)


@pytest.fixture(scope="module")
def s3() -> Iterator[MinioServer]:
    with MinioServer() as server:
        yield server


def test_report_root_follows_the_lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert report_store.report_root("lake") == str(tmp_path / "lake" / "reports")
    assert (
        report_store.report_location("/data/lake/", "seg", date(2026, 3, 1))
        == "/data/lake/reports/seg/2026-03-01"
    )
    # Spark's s3a:// is the same bucket for boto3
    assert report_store.report_root("s3a://dmp-lake/prod") == "s3://dmp-lake/prod/reports"
    assert report_store.report_root("s3://dmp-lake/prod/") == "s3://dmp-lake/prod/reports"
    assert report_store.report_root("file:///srv/lake") == "file:///srv/lake/reports"
    with pytest.raises(DmpError) as err:
        report_store.report_root("hdfs://nn/lake")
    assert str(err.value) == (
        "hdfs://nn/lake: reports can be written to a local folder, file:// or s3:// (s3a://) only; "
        "give dmp evaluate --out DIR"
    )


def test_default_report_lands_under_the_lake_whatever_the_working_directory(
    spark,  # noqa: ANN001
    tiny: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dmp.steps.evaluate import evaluate_pack

    lake, segments = tiny
    driver_cwd = tmp_path / "driver_cwd"  # what a spark-submit driver's container would be
    driver_cwd.mkdir()
    monkeypatch.chdir(driver_cwd)
    result = evaluate_pack(spark, lake, "spring_revisit", R, segments_dir=segments)

    folder = Path(lake) / "reports" / "spring_revisit" / DAY
    assert (result.json_path, result.html_path) == (str(folder / "report.json"), str(folder / "report.html"))
    assert sorted(p.name for p in folder.iterdir()) == ["report.html", "report.json"]
    assert list(driver_cwd.iterdir()) == []  # nothing in the working directory
    saved = json.loads((folder / "report.json").read_text())
    # the spec's attribution_days (3), not its look-back window_days (14)
    assert (saved["window_days"], saved["window"]) == (3, ["2026-03-16", "2026-03-18"])
    assert saved["rate_treatment"] == pytest.approx(2 / 6)  # t1 (R+1), t4 (R+2); t5 on R+4 is outside
    results = lk.read_table(spark, lake, tables.UPLIFT_RESULTS).toPandas()
    assert set(results[results["segment"] == "spring_revisit"]["window_days"]) == {3}

    summary = {(u["segment"], u["run_date"]): u for u in collect_summary(lake)["uplift"]}
    assert summary[("spring_revisit", DAY)]["report"] == str(folder / "report.html")


def test_cli_window_defaults_to_the_spec_and_window_days_overrides_it(
    spark,  # noqa: ANN001
    tiny: tuple[str, str],
    tmp_path: Path,
) -> None:
    from dmp.cli import app

    lake, segments = tiny
    args = [
        "evaluate",
        "--lake",
        lake,
        "--segments",
        segments,
        "--segment",
        "spring_revisit",
        "--run-date",
        DAY,
    ]
    folder = Path(lake) / "reports" / "spring_revisit" / DAY
    res = CliRunner().invoke(app, [*args, "--window-days", "2"])
    assert res.exit_code == 0, res.output
    assert f"report: {folder / 'report.html'}" in res.output.replace("\n", "")
    assert json.loads((folder / "report.json").read_text())["window"] == ["2026-03-16", "2026-03-17"]
    res = CliRunner().invoke(app, [*args, "--window-days", "91"])
    assert res.exit_code == 1 and str(res.exception) == "--window-days: expected 1 … 90 days, got 91"
    res = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "elsewhere")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "elsewhere" / "report.json").read_text())["window_days"] == 3


def test_an_unusable_report_location_fails_before_anything_is_written(
    spark,  # noqa: ANN001
    tiny: tuple[str, str],
) -> None:
    from dmp.steps.evaluate import evaluate_pack

    lake, _ = tiny
    with pytest.raises(DmpError, match=r"^hdfs://nn/r: reports can be written to a local folder"):
        evaluate_pack(spark, lake, "other_segment", R, window_days=3, out_dir="hdfs://nn/r", scope=S001)
    results = lk.read_table(spark, lake, tables.UPLIFT_RESULTS).toPandas()
    assert "other_segment" not in set(results["segment"])


def _objects(s3: MinioServer, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket).get("Contents", []))


def test_reports_on_s3_are_written_and_listed_for_an_s3a_lake(
    spark,  # noqa: ANN001
    tiny: tuple[str, str],
    s3: MinioServer,
    tmp_path: Path,
) -> None:
    from dmp.steps.evaluate import evaluate_pack

    lake, segments = tiny
    s3.create_bucket("dmp-lake")
    remote_lake = "s3a://dmp-lake/prod"
    # --out s3://: the pack step writes through the S3 store (same client as deliveries)
    out = report_store.report_location(remote_lake, "spring_revisit", R)
    assert out == "s3://dmp-lake/prod/reports/spring_revisit/2026-03-15"
    result = evaluate_pack(spark, lake, "spring_revisit", R, segments_dir=segments, out_dir=out)
    assert result.html_path == f"{out}/report.html"
    assert _objects(s3, "dmp-lake") == [
        "prod/reports/spring_revisit/2026-03-15/report.html",
        "prod/reports/spring_revisit/2026-03-15/report.json",
    ]
    body = s3.client().get_object(Bucket="dmp-lake", Key="prod/reports/spring_revisit/2026-03-15/report.json")
    assert json.loads(body["Body"].read())["uplift_abs"] == pytest.approx(result.report["uplift_abs"])

    # the lake's gold/uplift_results on S3 too (copied object by object), then dmp summary on s3a://
    client = s3.client()
    local_table = Path(tables.table_path(lake, tables.UPLIFT_RESULTS))
    for file in local_table.rglob("*"):
        if file.is_file():
            key = f"prod/{tables.UPLIFT_RESULTS}/{file.relative_to(local_table).as_posix()}"
            client.upload_file(str(file), "dmp-lake", key)
    uplift = {(u["segment"], u["run_date"]): u for u in collect_summary(remote_lake)["uplift"]}
    assert uplift[("spring_revisit", DAY)]["report"] == f"{out}/report.html"
    assert report_store.find_reports(remote_lake) == {("spring_revisit", DAY): f"{out}/report.html"}

    # bring-your-own mode to s3:// as well
    from dmp.cli import app

    csv = _byo_csv(tmp_path / "exp.csv")
    args = ["evaluate", "--input", str(csv), "--group-col", "arm", "--outcome-col", "bought"]
    args += ["--treatment-value", "A", "--control-value", "B", "--out", "s3://dmp-lake/adhoc/exp1"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "s3://dmp-lake/adhoc/exp1/report.html" in res.output.replace("\n", "")
    assert [k for k in _objects(s3, "dmp-lake") if k.startswith("adhoc/")] == [
        "adhoc/exp1/report.html",
        "adhoc/exp1/report.json",
    ]
    assert os.environ["AWS_ENDPOINT_URL"] == s3.endpoint  # really the MinIO over HTTP
