"""The spec of a pack's kept sub-audience, from its evaluation's subgroup table (``dmp segments suggest``).

The subgroup table (report.json ``subgroups``, :mod:`dmp.stats.subgroups`) gives, per tag, the
subgroups to keep and, for each subgroup, the ``where:`` condition selecting exactly its users.
The suggestion is the original spec with:

- ``name``: ``<segment>_suggested`` (and the file ``<segment>_suggested.yaml``);
- ``where``: the kept subgroups of one tag (``any`` of their conditions when several), ANDed
  (``all``) with the spec's own ``where`` when it has one;
- ``description``: what was kept, from which evaluation, and how many of the pack's users that was.

Everything else (kind, scope, holdout, channels, coupon) is unchanged, so the suggested audience is
the original audience restricted to the kept subgroups, and it keeps a holdout to be evaluated in
turn. It is validated with the spec loader (fields, references, channels) and written for a
marketer to review, never built: copying it into the segments folder is the decision to run it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from dmp.contracts.errors import DmpError, SpecError
from dmp.contracts.safe_yaml import YamlRefused, load_yaml_file
from dmp.contracts.specs.issues import issues_from_validation_error
from dmp.contracts.specs.loader import load_specs
from dmp.contracts.specs.models import SegmentSpec, spec_hash

SUFFIX = "_suggested"
KEEP = "keep"  # the decision of a kept subgroup (dmp.stats.subgroups.KEEP; contracts cannot import stats)


@dataclass
class Suggestion:
    """A suggested spec (the YAML mapping) and what it keeps."""

    name: str
    tag: str
    kept: list[str]
    keep_n: int
    n_users: int
    condition: dict[str, Any]
    spec: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def suggested_name(segment: str) -> str:
    return f"{segment}{SUFFIX}"


def _tag_entry(block: dict[str, Any], tag: str, source: str) -> dict[str, Any]:
    entries = {e.get("tag"): e for e in block.get("tags") or [] if isinstance(e, dict)}
    if tag not in entries:
        raise DmpError(
            f"{source}: subgroups.tags: no tag {tag!r}; the table has {', '.join(map(str, entries))}"
        )
    return entries[tag]


def kept_condition(block: dict[str, Any], tag: str, source: str) -> tuple[dict[str, Any], list[str]]:
    """(the ``where`` selecting the kept subgroups of ``tag``, their labels)."""
    kept = [r for r in block.get("rows") or [] if r.get("tag") == tag and r.get("decision") == KEEP]
    if not kept:
        raise DmpError(f"{source}: subgroups: no subgroup of {tag!r} is kept; nothing to suggest")
    unwritable = [r["subgroup"] for r in kept if not r.get("where")]
    if unwritable:
        raise DmpError(
            f"{source}: subgroups: {tag} = {', '.join(unwritable)} has no spec condition (a spec cannot select "
            f"it exactly: see dmp.stats.subgroups); choose another --tag"
        )
    conditions = [r["where"] for r in kept]
    return (conditions[0] if len(conditions) == 1 else {"any": conditions}), [r["subgroup"] for r in kept]


def choose_tag(block: dict[str, Any], tag: str | None, source: str) -> str:
    """``tag`` when given, else the table's suggested tag (an error saying why there is none)."""
    if "rows" not in block:
        raise DmpError(f"{source}: subgroups: no subgroup table ({block.get('note', 'not computed')})")
    if tag is not None:
        _tag_entry(block, tag, source)
        return tag
    chosen = block.get("suggested_tag")
    if not chosen:
        raise DmpError(f"{source}: subgroups.suggested_tag: none; {block.get('suggest_note', '')}")
    return str(chosen)


def suggest_spec(
    raw: dict[str, Any],
    block: dict[str, Any],
    *,
    source: str,
    run_date: str,
    tag: str | None = None,
) -> Suggestion:
    """The suggested spec mapping from the original spec's mapping ``raw`` and the subgroup table."""
    segment = str(raw.get("name"))
    chosen = choose_tag(block, tag, source)
    kept_where, labels = kept_condition(block, chosen, source)
    entry = _tag_entry(block, chosen, source)
    n_users, keep_n = int(block.get("n_users") or 0), int(entry.get("keep_n") or 0)
    spec = dict(raw)
    spec["name"] = suggested_name(segment)
    words = (
        f"Suggested from the evaluation of {segment} on {run_date}: only {chosen} = {', '.join(labels)} "
        f"({keep_n:,} of the pack's {n_users:,} users then)."
    )
    spec["description"] = f"{words} {raw['description']}" if raw.get("description") else words
    spec["where"] = {"all": [raw["where"], kept_where]} if raw.get("where") else kept_where
    try:
        SegmentSpec.model_validate(spec)
    except ValidationError as exc:
        issues = issues_from_validation_error(f"{suggested_name(segment)} (suggested)", exc)
        raise SpecError("\n".join(str(i) for i in issues)) from exc
    notes = []
    hashes = block.get("spec_hashes") or []
    current = spec_hash(SegmentSpec.model_validate(raw))
    if hashes and current not in hashes:
        notes.append(
            f"the spec of {segment} changed since the evaluated pack was built (spec_hash {', '.join(hashes)} "
            f"then, {current} now): the suggestion adds the condition to today's spec"
        )
    if keep_n == n_users:
        notes.append(
            "the kept subgroups are the whole pack: the suggestion selects what the spec already does"
        )
    return Suggestion(spec["name"], chosen, labels, keep_n, n_users, kept_where, spec, notes)


def suggestion_yaml(suggestion: Suggestion) -> str:
    """The file's text: a comment saying it was generated and is not built, then the spec."""
    head = (
        f"# Suggested by dmp segments suggest: keep {suggestion.tag} = {', '.join(suggestion.kept)}.\n"
        "# Not built: review it, then copy it into the segments folder to run it.\n"
    )
    return head + yaml.safe_dump(suggestion.spec, sort_keys=False, allow_unicode=True, width=100)


def original_spec(segments_dir: str | Path, segment: str) -> dict[str, Any]:
    """The segment's spec file as written (its YAML mapping), after checking it is valid."""
    spec_set = load_specs(segments_dir)
    if segment not in spec_set.specs:
        problems = [str(i) for i in spec_set.errors if segment in str(i)]
        detail = f": {problems[0]}" if problems else ""
        raise DmpError(f"{segments_dir}: no valid spec named {segment!r}{detail}")
    path = spec_set.path_of[segment]
    try:
        raw = load_yaml_file(path)
    except YamlRefused as exc:
        raise SpecError(str(exc)) from exc
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: expected a mapping of spec fields")
    return raw


def write_suggestion(suggestion: Suggestion, out_dir: str | Path, segments_dir: str | Path) -> Path:
    """Write ``<out_dir>/<name>.yaml`` and validate it with the loader against ``segments_dir``
    (references, channels); an invalid file is removed and its issues raised."""
    folder = Path(out_dir)
    if folder.resolve() == Path(segments_dir).resolve():
        # a file in the segments folder is built by the next dmp segments build: not a suggestion
        raise DmpError(f"{folder}: --out is the segments folder; write the suggestion elsewhere to review it")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{suggestion.name}.yaml"
    path.write_text(suggestion_yaml(suggestion), encoding="utf-8")
    spec_set = load_specs(segments_dir, [path])
    if spec_set.errors or suggestion.name not in spec_set.specs:
        path.unlink(missing_ok=True)
        raise SpecError(
            "\n".join(str(i) for i in spec_set.errors) or f"{path}: the suggested spec is not valid"
        )
    return path
