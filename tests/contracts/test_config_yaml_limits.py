"""The tag config and the DAG planner read YAML through safe_yaml, like specs and channels.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from dmp.contracts.errors import DmpError
from dmp.contracts.tag_config import load_tag_config
from dmp.orchestration.planning import list_channels

LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)


def test_tag_config_billion_laughs_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tags.yaml"
    path.write_text(LAUGHS)
    with pytest.raises(DmpError) as err:
        load_tag_config(path)
    assert str(err.value).startswith(f"{path}: ")
    assert "alias" in str(err.value) or "expands" in str(err.value)


def test_tag_config_not_utf8_names_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "tags.yaml"
    path.write_bytes("top_n: 3 # 标签\n".encode("gbk"))
    with pytest.raises(DmpError) as err:
        load_tag_config(path)
    assert str(err.value).startswith(f"{path}: not UTF-8: byte 0xb1 at offset 11 (line 1)")


def test_tag_config_still_reads_a_good_file(tmp_path: Path) -> None:
    path = tmp_path / "tags.yaml"
    path.write_text("top_n: 5\n")
    assert load_tag_config(path).top_n == 5


def test_planner_refuses_a_billion_laughs_channels_file(tmp_path: Path) -> None:
    (tmp_path / "channels.yaml").write_text("channels:\n  x: {}\n" + LAUGHS)
    with pytest.raises(DmpError) as err:
        list_channels(str(tmp_path))
    assert str(err.value).startswith(f"{tmp_path / 'channels.yaml'}: ")


def test_planner_lists_channels(tmp_path: Path) -> None:
    (tmp_path / "channels.yaml").write_text("channels:\n  tencent_ads: {}\n  coupon: {}\n")
    assert list_channels(str(tmp_path)) == ["coupon", "tencent_ads"]
