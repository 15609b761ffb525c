"""Hostile spec files (issue 22): each is one exact issue, never a hang or a traceback, and the good
spec beside it is still valid. No Spark here; tests/steps/test_build_with_hostile_spec.py builds.

No test measures wall-clock time: the guard below only turns a hang into a failure. That the
loader never expands an alias bomb is checked directly: construction is made to fail, so a refusal
can only come from the counting done while composing.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dmp.contracts import safe_yaml
from dmp.contracts.safe_yaml import YamlRefused, load_yaml_file, load_yaml_text
from dmp.contracts.specs import load_specs
from dmp.contracts.specs._base import show
from dmp.contracts.specs.issues import MAX_ISSUES_PER_FILE

GOOD = "name: good\nkind: rule\nwhere: {tag: recency_days, lte: 7}\n"


@pytest.fixture(autouse=True)
def hang_guard() -> Iterator[None]:
    """Fail (not hang) if anything here runs 10 s; the old loader ran > 120 s on these files."""

    def _fail(signum: int, frame: Any) -> None:
        raise TimeoutError("hang guard: the loader did not finish in 10 s")

    previous = signal.signal(signal.SIGALRM, _fail)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def laughs_in_description(levels: int = 9) -> str:
    """The classic bomb: anchor k is a list of 9 aliases of anchor k-1 (9**(levels-1) leaves), ~500 bytes."""
    lines = ["name: lol", "kind: rule", "where: {tag: recency_days, lte: 7}", 'x-a0: &a0 "lol"']
    for k in range(1, levels):
        lines.append(f"x-a{k}: &a{k} [" + ", ".join([f"*a{k - 1}"] * 9) + "]")
    lines.append(f"description: *a{levels - 1}")
    return "\n".join(lines) + "\n"


def laughs_in_where() -> str:
    """The bomb as a condition tree: ``all`` of 9 copies of the ``all`` one level down, 9 levels."""
    lines = ["name: lol_where", "kind: rule", "where:", "  all:", "  - &c0 {tag: recency_days, lte: 7}"]
    for k in range(1, 9):
        lines.append(f"  - &c{k} {{all: [" + ", ".join([f"*c{k - 1}"] * 9) + "]}")
    return "\n".join(lines) + "\n"


def deep_where(levels: int = 2000) -> str:
    return (
        "name: deep\nkind: rule\nwhere: " + "{all: [" * levels + "{tag: recency_days, lte: 7}" + "]}" * levels
    )


def write(folder: Path, files: dict[str, str | bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        path = folder / name
        if isinstance(body, bytes):
            path.write_bytes(body)
        else:
            path.write_text(body, encoding="utf-8")
    return folder


def lines(folder: Path) -> list[str]:
    return [str(issue) for issue in load_specs(folder).errors]


@pytest.fixture()
def no_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building Python values is forbidden: a refusal must come from composing (nothing expanded)."""

    def _refuse(self: Any, node: Any) -> Any:
        raise AssertionError("the loader started constructing values")

    monkeypatch.setattr(safe_yaml._GuardedLoader, "construct_document", _refuse)


def test_billion_laughs_in_description_is_refused_while_composing(
    tmp_path: Path, no_construction: None
) -> None:
    path = tmp_path / "lol.yaml"
    path.write_text(laughs_in_description())
    assert len(path.read_bytes()) < 600
    with pytest.raises(YamlRefused) as err:
        load_yaml_file(path)
    assert str(err.value) == (
        f"{path}: x-a6: the value at line 10, column 7 expands to more than 100000 values "
        "(aliases repeat what they name); at most 100000 values are allowed"
    )


def test_billion_laughs_in_nested_where_is_refused_while_composing(
    tmp_path: Path, no_construction: None
) -> None:
    path = tmp_path / "lol_where.yaml"
    path.write_text(laughs_in_where())
    with pytest.raises(YamlRefused) as err:
        load_yaml_file(path)
    assert (err.value.field_path, err.value.problem) == (
        "where.all[5].all",
        "the value at line 10, column 15 expands to more than 100000 values (aliases repeat what they "
        "name); at most 100000 values are allowed",
    )


def test_the_whole_document_is_counted(tmp_path: Path) -> None:
    """5 levels (6,561 leaves, 7,381 values per copy) pass; at 6 levels the anchor x-a5 (66,430 values)
    is under the limit but the document holds it twice (``description: *a5``): refused at the top."""
    assert load_yaml_text(laughs_in_description(5), "five.yaml")["description"][0][0][0][0] == "lol"
    with pytest.raises(YamlRefused) as err:
        load_yaml_text(laughs_in_description(6), "six.yaml")
    assert str(err.value) == (
        "six.yaml: the value at line 1, column 1 expands to more than 100000 values "
        "(aliases repeat what they name); at most 100000 values are allowed"
    )


def test_alias_budget_depth_through_aliases_and_recursive_aliases() -> None:
    many = "a: &a 1\nb: [" + ", ".join(["*a"] * 101) + "]\n"
    with pytest.raises(YamlRefused) as err:
        load_yaml_text(many, "many.yaml")
    assert str(err.value) == (
        "many.yaml: b[100]: more than 100 aliases (*a at line 2, column 405); "
        "at most 100 aliases are allowed, write the values out"
    )
    assert load_yaml_text("a: &a 1\nb: [" + ", ".join(["*a"] * 100) + "]\n", "ok.yaml") == {
        "a": 1,
        "b": [1] * 100,
    }
    deep_by_alias = "a: &a " + "[" * 40 + "1" + "]" * 40 + "\nb: " + "[" * 30 + "*a" + "]" * 30 + "\n"
    with pytest.raises(YamlRefused) as err:
        load_yaml_text(deep_by_alias, "d.yaml")
    assert err.value.problem == (
        "alias *a at line 2, column 34 nests the document deeper than 64 levels; "
        "at most 64 levels of lists and mappings are allowed"
    )
    with pytest.raises(YamlRefused) as err:
        load_yaml_text("a: &a [1, *a]\n", "r.yaml")
    assert str(err.value) == (
        "r.yaml: a[1]: alias *a at line 1, column 11 is inside the value it names; "
        "an alias may only repeat a value that is complete"
    )


def test_deep_where_is_an_issue_not_a_recursion_error(tmp_path: Path) -> None:
    folder = write(tmp_path / "segs", {"deep.yaml": deep_where(), "good.yaml": GOOD})
    spec_set = load_specs(folder)
    assert [str(i) for i in spec_set.errors] == [
        f"{folder}/deep.yaml: where.all[0].all[0].all[0].all[0].all[0].all[0].all[0].al...: "
        "nested deeper than 64 levels at line 3, column 231; at most 64 levels of lists and mappings are allowed"
    ]
    assert list(spec_set.specs) == ["good"]
    # 31 levels of all: 2 + 2 * 30 mappings and lists, the leaf mapping is the 64th level; one more is too deep.
    assert load_yaml_text(deep_where(31), "ok.yaml") is not None
    with pytest.raises(YamlRefused, match="nested deeper than 64 levels at line 3, column 231;"):
        load_yaml_text(deep_where(32), "no.yaml")


def test_gbk_file_names_the_byte_and_says_save_as_utf8(tmp_path: Path) -> None:
    body = "name: gbk\nkind: rule\ndescription: 春季回访\nwhere: {tag: recency_days, lte: 7}\n"
    folder = write(tmp_path / "segs", {"gbk.yaml": body.encode("gbk"), "good.yaml": GOOD})
    assert lines(folder) == [
        f"{folder}/gbk.yaml: not UTF-8: byte 0xb4 at offset 34 (line 3) is not valid UTF-8; save the file as UTF-8"
    ]
    # The same text in UTF-8 (with or without a BOM) is a valid spec.
    (folder / "gbk.yaml").write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))
    spec_set = load_specs(folder)
    assert spec_set.errors == [] and spec_set.specs["gbk"].description == "春季回访"


def test_file_too_big_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    folder = write(
        tmp_path / "segs", {"big.yaml": GOOD.replace("good", "big") + "# pad\n" * 50_000, "good.yaml": GOOD}
    )
    assert lines(folder) == [
        f"{folder}/big.yaml: the file is larger than 262144 bytes; at most 262144 bytes are allowed"
    ]
    assert list(load_specs(folder).specs) == ["good"]


def test_duplicate_keys_name_the_key_the_lines_and_the_field(tmp_path: Path) -> None:
    nested = (
        "name: dup\nkind: rule\nwhere:\n  all:\n  - {tag: recency_days, lte: 7}\n"
        "  - tag: orders_30d\n    gte: 1\n    tag: views_30d\n"
    )
    folder = write(tmp_path / "segs", {"dup.yaml": nested, "top.yaml": "name: top\nkind: rule\nname: top\n"})
    assert lines(folder) == [
        f"{folder}/dup.yaml: where.all[1]: key 'tag' appears twice, at line 6 and line 8; "
        "each key may be given once per mapping",
        f"{folder}/top.yaml: key 'name' appears twice, at line 1 and line 3; each key may be given once per mapping",
    ]
    # Equal keys written differently are only equal once constructed: caught there.
    with pytest.raises(YamlRefused) as err:
        load_yaml_text("a: 1\n1: x\n0x1: y\n", "t.yaml")
    assert (
        str(err.value)
        == "t.yaml: key 1 appears twice, at line 2 and line 3; each key may be given once per mapping"
    )


def test_unreadable_values_and_characters_are_issues(tmp_path: Path) -> None:
    folder = write(
        tmp_path / "segs",
        {
            "day.yaml": "name: day\nkind: rule\nwhere: {tag: last_order_date, eq: 2026-02-30}\n",
            "nul.yaml": "name: nul\nkind: rule\ndescription: a\x00b\n",
            "tag.yaml": "name: tag\nkind: rule\nwhere: !!python/object:os.system {tag: x}\n",
        },
    )
    assert lines(folder) == [
        f"{folder}/day.yaml: invalid value at line 3, column 35: cannot read the value '2026-02-30': day is out "
        "of range for month; allowed: text, numbers, dates, true/false, lists and mappings",
        f"{folder}/nul.yaml: character U+0000 at line 3 is not allowed in YAML; use printable text",
        f"{folder}/tag.yaml: invalid value at line 3, column 8: could not determine a constructor for the tag "
        "'tag:yaml.org,2002:python/object:os.system'; allowed: text, numbers, dates, true/false, lists and mappings",
    ]


def test_yaml_and_yml_with_one_name_is_an_error_naming_both(tmp_path: Path) -> None:
    folder = write(
        tmp_path / "segs",
        {
            "x.yaml": "name: x\nkind: rule\nwhere: {tag: recency_days, lte: 7}\n",
            "x.yml": "name: x\nkind: rule\nwhere: {tag: recency_days, lte: 30}\n",
            "good.yaml": GOOD,
        },
    )
    both = f"({folder}/x.yaml, {folder}/x.yml)"
    spec_set = load_specs(folder)
    assert [str(i) for i in spec_set.errors] == [
        f"{folder}/x.yaml: name: segment 'x' is defined by 2 files {both}; keep one",
        f"{folder}/x.yml: name: segment 'x' is defined by 2 files {both}; keep one",
    ]
    assert list(spec_set.specs) == ["good"]
    assert spec_set.invalid_files == [f"{folder}/x.yaml", f"{folder}/x.yml"]


def test_every_hostile_file_is_one_issue_and_the_good_spec_still_validates(tmp_path: Path) -> None:
    folder = write(
        tmp_path / "segs",
        {
            "lol.yaml": laughs_in_description(),
            "lol_where.yaml": laughs_in_where(),
            "deep.yaml": deep_where(),
            "gbk.yaml": "name: gbk\ndescription: 中文\n".encode("gbk"),
            "good.yaml": GOOD,
        },
    )
    spec_set = load_specs(folder)
    assert sorted((Path(i.file).name, i.field_path) for i in spec_set.errors) == [
        ("deep.yaml", "where.all[0].all[0].all[0].all[0].all[0].all[0].all[0].al..."),
        ("gbk.yaml", ""),
        ("lol.yaml", "x-a6"),
        ("lol_where.yaml", "where.all[5].all"),
    ]
    assert (spec_set.selected, list(spec_set.specs)) == (["good"], ["good"])


def test_show_cuts_before_rendering() -> None:
    """``show`` of a 387-million-leaf shared value returns at once (repr() of it never ends)."""
    bomb: Any = "lol"
    for _ in range(9):
        bomb = [bomb] * 9
    assert show(bomb) == "[[[[...], [...], [...], [...], ...], [[...], [...], [...]..."
    assert show("x" * 100_000) == "'" + "x" * 21 + "..." + "x" * 22 + "'"


def test_many_bad_leaves_give_a_bounded_report(tmp_path: Path) -> None:
    leaves = "\n".join(f"  - {{tag: nope_{i}, eq: 1}}" for i in range(30))
    folder = write(tmp_path / "segs", {"many.yaml": f"name: many\nkind: rule\nwhere:\n  all:\n{leaves}\n"})
    got = lines(folder)
    assert len(got) == MAX_ISSUES_PER_FILE + 1
    assert got[0].startswith(f"{folder}/many.yaml: where.all[0].tag: unknown tag 'nope_0'; allowed: ")
    assert got[-1] == f"{folder}/many.yaml: 10 more problem(s) in this file; fix the ones above first"


def test_cli_prints_patterns_and_paths_intact(tmp_path: Path) -> None:
    """rich markup would eat ``[a-z0-9_]`` (and a ``[tag]`` in a folder name): everything is escaped."""
    from typer.testing import CliRunner

    from dmp.cli import app

    folder = write(
        tmp_path / "segs[red]",
        {"bad.yaml": "name: Bad\nkind: rule\nwhere: {tag: recency_days, lte: 7}\n", "good.yaml": GOOD},
    )
    result = CliRunner().invoke(app, ["segments", "validate", "--segments", str(folder)])
    assert result.exit_code == 1
    out = result.output.replace("\n", "")
    assert (
        f"✗ {folder}/bad.yaml: name: must match ^[a-z0-9_]+$ (lower-case letters, digits, _), got 'Bad'"
        in out
    )
    assert f"✓ {folder}/good.yaml (rule)" in out
    assert str(result.exception) == f"1 problem(s) in the segment specs of {folder}"
    ok = CliRunner().invoke(
        app, ["segments", "validate", str(folder / "good.yaml"), "--segments", str(folder)]
    )
    assert ok.exit_code == 0, ok.output
    assert f"1 spec(s) valid in {folder}" in ok.output.replace("\n", "")


def test_cli_validate_reports_the_bomb_and_the_good_spec(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from dmp.cli import app

    folder = write(tmp_path / "segs", {"lol_where.yaml": laughs_in_where(), "good.yaml": GOOD})
    result = CliRunner().invoke(app, ["segments", "validate", "--segments", str(folder)])
    assert result.exit_code == 1
    out = result.output.replace("\n", "")
    assert (
        f"✗ {folder}/lol_where.yaml: where.all[5].all: the value at line 10, column 15 expands to more than "
        "100000 values (aliases repeat what they name); at most 100000 values are allowed" in out
    )
    assert f"✓ {folder}/good.yaml (rule)" in out


def test_yaml_dump_of_a_good_spec_round_trips() -> None:
    """The guarded loader reads what yaml.safe_dump writes (anchors included) like safe_load does."""
    shared = {"tag": "recency_days", "lte": 7}
    doc = {"name": "rt", "kind": "rule", "where": {"any": [shared, shared]}}
    text = yaml.safe_dump(doc)
    assert "&id001" in text and "*id001" in text
    assert load_yaml_text(text, "rt.yaml") == yaml.safe_load(text) == doc


HOSTILE_TEXTS = {
    "laughs": laughs_in_description(),
    "laughs_where": laughs_in_where(),
    "deep": deep_where(),
    "aliases": "a: &a 1\nb: [" + ", ".join(["*a"] * 101) + "]\n",
    "recursive": "a: &a [1, *a]\n",
    "duplicate": "a:\n  b: 1\n  b: 2\n",
    "nul_after_non_ascii": "a: 春季春季春季\nb: x\x00\nc: 1\nd: 2\n",
    "bad_date": "d: 2026-02-30\n",
}


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="compares libyaml's parser with PyYAML's")
@pytest.mark.parametrize("case", sorted(HOSTILE_TEXTS))
def test_libyaml_and_pure_python_parsers_refuse_alike(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without libyaml the pure-Python parser runs the same checks: same refusal, same position."""
    with pytest.raises(YamlRefused) as with_c:
        load_yaml_text(HOSTILE_TEXTS[case], "t.yaml")
    monkeypatch.setattr(safe_yaml, "_GuardedLoader", safe_yaml._PyGuardedLoader)
    with pytest.raises(YamlRefused) as pure:
        load_yaml_text(HOSTILE_TEXTS[case], "t.yaml")
    assert str(pure.value) == str(with_c.value)
    if case == "nul_after_non_ascii":
        assert (
            str(pure.value) == "t.yaml: character U+0000 at line 2 is not allowed in YAML; use printable text"
        )
