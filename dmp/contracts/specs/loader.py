"""Reading spec files: YAML (duplicate keys rejected), one file, or a whole folder validated together.

A spec file is ``segments/<name>.yaml``; its ``name`` must equal the file name (so a marketer who
renames a segment renames its file, and two files can never define the same segment).
``load_specs`` validates every spec of a folder (plus ``channels.yaml``) and never stops at the
first bad file: valid specs go to ``SpecSet.specs``, problems to ``SpecSet.errors``, each one line
``FILE: FIELD.PATH: what is wrong and what is allowed``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dmp.contracts.channels import CHANNELS_FILE, load_channels
from dmp.contracts.errors import SpecError
from dmp.contracts.graph import find_cycles
from dmp.contracts.safe_yaml import YamlRefused, load_yaml_file
from dmp.contracts.specs._base import show
from dmp.contracts.specs.graph import invalid_dependencies, spec_graph
from dmp.contracts.specs.issues import SpecIssue, issues_from_validation_error
from dmp.contracts.specs.models import NAME_PATTERN, SPEC_SUFFIXES, SegmentSpec

# A name longer than the model's max_length (64) gets that error alone, not a file-name hint too.
_NAME_MAX = 64


def _read_yaml(path: Path) -> tuple[dict[str, Any] | None, list[SpecIssue]]:
    """The file's top-level mapping, or the issue saying why there is none.

    :mod:`dmp.contracts.safe_yaml` refuses what would hang or crash the whole folder (a file over
    256 KiB, not UTF-8, alias bombs, deep nesting, duplicate keys) before any value is built, so
    one hostile file is one issue and the other specs are still checked and built.
    """
    try:
        raw = load_yaml_file(path)
    except YamlRefused as exc:
        return None, [SpecIssue(str(path), exc.field_path, exc.problem)]
    if not isinstance(raw, dict):
        got = "an empty file" if raw is None else type(raw).__name__
        message = f"expected a mapping of spec fields (name, kind, ...), got {got}"
        return None, [SpecIssue(str(path), "(top level)", message)]
    return raw, []


def _parse_file(path: Path) -> tuple[SegmentSpec | None, list[SpecIssue]]:
    """(spec, or None when the file has any issue; its issues) for one file on its own."""
    raw, issues = _read_yaml(path)
    if raw is None:
        return None, issues
    raw_name = raw.get("name") if isinstance(raw.get("name"), str) else None
    spec: SegmentSpec | None = None
    try:
        spec = SegmentSpec.model_validate(raw)
    except ValidationError as exc:
        issues.extend(issues_from_validation_error(str(path), exc))
    if (
        raw_name is not None
        and path.stem != raw_name
        and re.fullmatch(NAME_PATTERN, raw_name[: _NAME_MAX + 1])
    ):
        message = f"{show(raw_name)} does not match the file name; name the file {raw_name}.yaml"
        issues.append(SpecIssue(str(path), "name", message))
    return (spec if not issues else None), issues


def load_spec(path: str | Path) -> SegmentSpec:
    """One spec file, checked on its own (no channels or cross-spec checks); raises SpecError."""
    spec, issues = _parse_file(Path(path))
    if issues or spec is None:
        raise SpecError("\n".join(str(i) for i in issues))
    return spec


@dataclass
class SpecSet:
    specs: dict[str, SegmentSpec] = field(default_factory=dict)
    errors: list[SpecIssue] = field(default_factory=list)
    path_of: dict[str, Path] = field(default_factory=dict)
    # Names of the specs the caller asked about (all of the folder when no paths were given).
    selected: list[str] = field(default_factory=list)
    # Files whose spec is invalid (selected or not), by file path.
    invalid_files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def spec_files(segments_dir: str | Path) -> list[Path]:
    """The spec files of a folder (every ``.yaml`` / ``.yml`` but ``channels.yaml``), sorted."""
    folder = Path(segments_dir)
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix in SPEC_SUFFIXES and p.name != CHANNELS_FILE
    )


def _channel_types(segments_dir: Path) -> tuple[dict[str, str] | None, SpecIssue | None]:
    """Channel name -> type from ``channels.yaml`` via ``dmp.contracts.channels`` (None when unreadable)."""
    path = segments_dir / CHANNELS_FILE
    try:
        config = load_channels(segments_dir)
    except (SpecError, YamlRefused) as exc:
        return None, SpecIssue(str(path), "", str(exc).removeprefix(f"{path}: "))
    return {name: ch.type for name, ch in config.channels.items()}, None


@dataclass
class _Scan:
    """Every file being validated together, by resolved path, with its spec and issues so far."""

    files: list[Path]  # resolved, folder files first, then the extra selected paths
    display: dict[Path, Path]  # resolved -> the path as given (used in messages)
    selected: set[Path]
    parsed: dict[Path, SegmentSpec] = field(default_factory=dict)
    issues: dict[Path, list[SpecIssue]] = field(default_factory=dict)

    def add(self, resolved: Path, field_path: str, message: str) -> None:
        self.issues[resolved].append(SpecIssue(str(self.display[resolved]), field_path, message))

    def by_name(self) -> dict[str, SegmentSpec]:
        """The parsed specs by segment name, in file order (names are unique once claimed)."""
        return {spec.name: spec for spec in self.parsed.values()}


def _scan(folder: Path, paths: list[Path] | None) -> _Scan:
    """Parse the folder's spec files and ``paths`` (each file once, even if given twice)."""
    files = spec_files(folder)
    selected_files = [Path(p) for p in paths] if paths else list(files)
    scan = _Scan(
        files=list(dict.fromkeys([*(p.resolve() for p in files), *(p.resolve() for p in selected_files)])),
        display={p.resolve(): p for p in [*files, *selected_files]},
        selected={p.resolve() for p in selected_files},
    )
    for resolved in scan.files:
        spec, issues = _parse_file(scan.display[resolved])
        scan.issues[resolved] = list(issues)
        if spec is not None:
            scan.parsed[resolved] = spec
    return scan


def _claim_names(scan: _Scan) -> dict[str, Path]:
    """Segment name -> the first file claiming it; a name claimed by several files is invalid in all.

    Every file claims the segment named like the file (a mismatched ``name`` is an error of its
    own), so references to a spec that does not even parse still say "invalid", not "unknown".
    ``x.yaml`` next to ``x.yml`` (or a selected file named like a folder spec) is ambiguous: which
    one is the segment is nobody's guess, so each of them gets an issue naming all of them and
    neither is built; the other specs are unaffected.
    """
    claimants: dict[str, list[Path]] = {}
    for resolved in scan.files:
        claimants.setdefault(scan.display[resolved].stem, []).append(resolved)
    for stem, files in claimants.items():
        if len(files) < 2:
            continue
        named = ", ".join(str(scan.display[f]) for f in files)
        for resolved in files:
            scan.add(
                resolved, "name", f"segment {stem!r} is defined by {len(files)} files ({named}); keep one"
            )
            scan.parsed.pop(resolved, None)
    return {stem: files[0] for stem, files in claimants.items()}


def _check_references(scan: _Scan, first_file: dict[str, Path]) -> None:
    """``exclude.segments`` and ``seed.segment`` must name a segment of the folder that is valid."""
    known = ", ".join(sorted(first_file)) or "(none)"
    valid = {spec.name for spec in scan.parsed.values()}
    for resolved, spec in list(scan.parsed.items()):
        refs = [(f"exclude.segments[{i}]", s) for i, s in enumerate(spec.exclude.segments)]
        if spec.seed is not None and spec.seed.segment:
            refs.append(("seed.segment", spec.seed.segment))
        for field_path, ref in refs:
            if ref not in first_file:
                scan.add(resolved, field_path, f"unknown segment {show(ref)}; known: {known}")
            elif ref not in valid:
                scan.add(
                    resolved, field_path, f"segment {ref!r} is invalid (see {scan.display[first_file[ref]]})"
                )


def _check_cycles(scan: _Scan) -> None:
    """Cycles between segments: exclusions and seeds both need the other pack built first."""
    file_of = {spec.name: resolved for resolved, spec in scan.parsed.items()}
    for cycle in find_cycles(spec_graph(scan.by_name(), among=file_of)):
        for name, nxt in zip(cycle[:-1], cycle[1:], strict=True):
            resolved = file_of[name]
            seed = scan.parsed[resolved].seed
            field_path = "seed.segment" if seed is not None and seed.segment == nxt else "exclude.segments"
            scan.add(resolved, field_path, f"cycle between segments: {' -> '.join(cycle)}")


def _check_channels(scan: _Scan, folder: Path) -> SpecIssue | None:
    """Every channel a spec names exists in ``channels.yaml``; coupon channels need ``coupon``.

    channels.yaml is checked whenever it exists or a selected spec needs it; a broken channels file
    is reported (returned: a non-zero exit) but does not invalidate the specs, packs do not need it.
    """
    uses_channels = any(spec.channels for r, spec in scan.parsed.items() if r in scan.selected)
    if not uses_channels and not (folder / CHANNELS_FILE).is_file():
        return None
    types, channel_issue = _channel_types(folder)
    if types is None:
        return channel_issue
    defined = ", ".join(sorted(types)) or "(none)"
    for resolved, spec in scan.parsed.items():
        for i, name in enumerate(spec.channels):
            if name not in types:
                message = f"unknown channel {show(name)}; defined in {folder / CHANNELS_FILE}: {defined}"
                scan.add(resolved, f"channels[{i}]", message)
            elif types[name] == "coupon" and spec.coupon is None:
                message = (
                    f"required because channel {name!r} is a coupon channel; "
                    "give {coupon_id, value, threshold, valid_days}"
                )
                scan.add(resolved, "coupon", message)
    return channel_issue


def _check_dependents(scan: _Scan) -> None:
    """A spec whose dependency is invalid cannot be built either (transitively)."""
    invalid = {spec.name for r, spec in scan.parsed.items() if scan.issues[r]}
    broken = invalid_dependencies(scan.by_name(), invalid)
    for resolved, spec in scan.parsed.items():
        if spec.name in broken:
            dep = broken[spec.name]
            field_path = "exclude.segments" if dep in spec.exclude.segments else "seed.segment"
            scan.add(resolved, field_path, f"depends on segment {dep!r}, which is invalid")


def _spec_set(scan: _Scan, channel_issue: SpecIssue | None) -> SpecSet:
    """Valid specs (all files) and the issues of the selected files, in file order."""
    out = SpecSet(errors=[channel_issue] if channel_issue is not None else [])
    for resolved in scan.files:
        issues = scan.issues[resolved]
        if issues:
            out.invalid_files.append(str(scan.display[resolved]))
        if resolved in scan.selected:
            out.errors.extend(issues)
        spec = scan.parsed.get(resolved)
        if spec is not None and not issues:
            out.specs[spec.name] = spec
            out.path_of[spec.name] = scan.display[resolved]
            if resolved in scan.selected:
                out.selected.append(spec.name)
    return out


def load_specs(segments_dir: str | Path, paths: list[Path] | None = None) -> SpecSet:
    """Validate the folder's specs (and ``paths``, which may live elsewhere) and ``channels.yaml``.

    References (``exclude.segments``, ``seed.segment``) resolve against every spec of the folder plus
    ``paths``; errors are reported for the selected files (``paths``, else the whole folder) and for
    ``channels.yaml`` when a selected spec uses channels.
    """
    folder = Path(segments_dir)
    scan = _scan(folder, paths)
    first_file = _claim_names(scan)
    _check_references(scan, first_file)
    _check_cycles(scan)
    channel_issue = _check_channels(scan, folder)
    _check_dependents(scan)
    return _spec_set(scan, channel_issue)
