"""Reading delivered files back in tests: a gzip CSV part file as a set of rows (header dropped)."""

from __future__ import annotations

import gzip
from pathlib import Path


def csv_rows(path: Path) -> set[tuple[str, ...]]:
    """The rows of a delivered ``part-*.csv.gz`` (dmp writes no quoted commas: ids and hex keys)."""
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    return {tuple(line.split(",")) for line in lines[1:]}


def local_channels_dir(tmp_path: Path, channels_yaml: str) -> Path:
    """``<tmp_path>/segments`` holding ``channels_yaml``; deliveries go under ``<tmp_path>/out``
    (set ``DMP_TEST_ROOT`` to ``(tmp_path / "out").as_uri()``, which the YAML names)."""
    folder = tmp_path / "segments"
    folder.mkdir()
    (folder / "channels.yaml").write_text(channels_yaml)
    return folder
