"""``segments build`` with hostile spec files beside a good one (issue 22), on real Spark + Delta.

Before the safe loader, the billion-laughs file here made the folder's validation run for minutes,
so no pack of the date was built at all. Now each hostile file is one reported line and the good
spec's pack is written with the same users as when it is alone (tests/steps/test_packs.py).
"""

from __future__ import annotations

import re
from pathlib import Path

from dmp.contracts import tables
from dmp.spark import lake as lk
from tests.contracts.test_specs_hostile import deep_where, laughs_in_description, laughs_in_where
from tests.steps.test_packs import pack, run_row, write_daily, write_specs
from tests.transforms.test_packs import REVISIT, REVISIT_ROWS, D

LIMIT = "at most 100000 values are allowed"


def hostile_folder(folder: Path) -> Path:
    write_specs(folder, REVISIT)
    (folder / "lol.yaml").write_text(laughs_in_description())
    (folder / "lol_where.yaml").write_text(laughs_in_where())
    (folder / "deep.yaml").write_text(deep_where())
    (folder / "gbk.yaml").write_bytes("name: gbk\nkind: rule\ndescription: 中文\n".encode("gbk"))
    return folder


EXPECTED_INVALID = [
    "{f}/deep.yaml: where.all[0].all[0].all[0].all[0].all[0].all[0].all[0].al...: nested deeper than 64 "
    "levels at line 3, column 231; at most 64 levels of lists and mappings are allowed",
    "{f}/gbk.yaml: not UTF-8: byte 0xd6 at offset 34 (line 3) is not valid UTF-8; save the file as UTF-8",
    "{f}/lol.yaml: x-a6: the value at line 10, column 7 expands to more than 100000 values "
    f"(aliases repeat what they name); {LIMIT}",
    "{f}/lol_where.yaml: where.all[5].all: the value at line 10, column 15 expands to more than 100000 "
    f"values (aliases repeat what they name); {LIMIT}",
]


def test_build_packs_builds_the_good_spec_and_reports_each_hostile_file(
    spark, lake: str, tmp_path: Path
) -> None:
    from dmp.steps.packs import build_packs

    write_daily(spark, lake, REVISIT_ROWS)
    segs = hostile_folder(tmp_path / "segs")
    report = build_packs(spark, lake, segs, D)
    assert report.invalid == [line.format(f=segs) for line in EXPECTED_INVALID]
    assert [(r.segment, r.status) for r in report.results] == [("revisit", "built")]
    assert pack(spark, lake, "revisit") == {
        "u01": "treatment",
        "u02": "treatment",
        "u05": "treatment",
        "u08": "treatment",
    }
    assert run_row(spark, lake, "revisit")["size"] == 4
    # Only the good spec has rows: nothing was written for a refused file.
    segments = lk.read_table(spark, lake, tables.PACK_RUNS).select("segment").distinct().collect()
    assert [r["segment"] for r in segments] == ["revisit"]


def test_cli_build_prints_each_refusal_and_exits_non_zero(spark, lake: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from dmp.cli import app

    write_daily(spark, lake, REVISIT_ROWS)
    segs = hostile_folder(tmp_path / "segs")
    result = CliRunner().invoke(
        app, ["segments", "build", "--lake", lake, "--date", str(D), "--segments", str(segs)]
    )
    assert result.exit_code == 1
    out = result.output.replace("\n", "")
    for line in EXPECTED_INVALID:
        assert f"✗ {line.format(f=segs)}" in out
    # The command raises DmpError; dmp's entry point prints it as one line (CliRunner keeps it here).
    assert str(result.exception) == "4 spec(s) invalid or failed; the valid packs were built"
    assert re.search(r"│ revisit\s+│ store_revisit\s+│ 4\s+│ 0\s+│ yes\s+│", out), out
    assert len(pack(spark, lake, "revisit")) == 4
