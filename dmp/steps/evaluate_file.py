"""Bring your own experiment: the uplift statistics on an external CSV / Parquet table, no Spark.

The table names its own columns; :class:`ExternalColumns` says which one holds the group, the 0/1
outcome and the optional value, score and pre-period outcome. Rows are mapped to the core's frame
(:mod:`dmp.stats.uplift`: group, converted, value, score, pre_converted), rows in neither group are
counted and ignored, and errors name the user's file and columns rather than the core's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from dmp.contracts.errors import DmpError
from dmp.contracts.vocab import HOLDOUT, TREATMENT
from dmp.stats import uplift
from dmp.steps.evaluate import Evaluation

TREATMENT_LABELS = (TREATMENT, "1")
CONTROL_LABELS = ("control", HOLDOUT, "0")


@dataclass(frozen=True)
class ExternalColumns:
    """Where the table keeps each input (the CLI's ``--*-col`` options) and the group labels.

    ``treatment_value`` / ``control_value`` default to the first of :data:`TREATMENT_LABELS` /
    :data:`CONTROL_LABELS` present in the group column (labels compare trimmed and lower-cased).
    """

    group_col: str
    outcome_col: str
    value_col: str | None = None
    score_col: str | None = None
    pre_outcome_col: str | None = None
    treatment_value: str | None = None
    control_value: str | None = None

    def by_option(self) -> list[tuple[str, str | None]]:
        """(CLI option, the user's column) for every input, in the order errors are checked."""
        return [
            ("--group-col", self.group_col),
            ("--outcome-col", self.outcome_col),
            ("--value-col", self.value_col),
            ("--score-col", self.score_col),
            ("--pre-outcome-col", self.pre_outcome_col),
        ]

    def optional_by_core(self) -> list[tuple[str, str | None]]:
        """(core column, the user's column) for the optional inputs, in the core frame's order."""
        return [("value", self.value_col), ("score", self.score_col), ("pre_converted", self.pre_outcome_col)]


def _norm_label(value: object) -> str | None:
    """A group label as compared: 1.0 and "1 " both read "1"; NaN / None is no label."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip().lower()


def read_table_file(path: str | Path) -> pd.DataFrame:
    """A .csv or .parquet table; any other file, or one that does not parse, is an error naming it."""
    p = Path(path)
    if not p.exists():
        raise DmpError(f"{p}: file not found")
    suffix = p.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(p)
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(p)
    except (ValueError, OSError) as exc:
        raise DmpError(f"{p}: cannot read as {suffix[1:]}: {exc}") from exc
    raise DmpError(f"{p}: unsupported file type {suffix!r}; expected .csv or .parquet")


def _check_columns(raw: pd.DataFrame, source: str, columns: ExternalColumns) -> None:
    for option, col in columns.by_option():
        if col is not None and col not in raw.columns:
            raise DmpError(f"{source}: column {col!r} ({option}) not found; columns are {list(raw.columns)}")


def _group_values(present: list[str], source: str, columns: ExternalColumns) -> tuple[str, str]:
    """(treatment label, control label): the given ones, else the first default label present."""
    t_val = _norm_label(columns.treatment_value) if columns.treatment_value is not None else None
    c_val = _norm_label(columns.control_value) if columns.control_value is not None else None
    if t_val is None:
        t_val = next((v for v in TREATMENT_LABELS if v in present), None)
    if c_val is None:
        c_val = next((v for v in CONTROL_LABELS if v in present), None)
    if t_val is None or c_val is None:
        raise DmpError(
            f"{source}: cannot tell treatment from control in column {columns.group_col!r} "
            f"(values {present[:10]}); give --treatment-value and --control-value"
        )
    if t_val == c_val:
        raise DmpError(f"{source}: --treatment-value and --control-value are both {t_val!r}")
    return t_val, c_val


def prepare_external(
    raw: pd.DataFrame, source: str, columns: ExternalColumns
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Map an external table to the core's columns; returns (frame, info about what was used/ignored)."""
    _check_columns(raw, source, columns)
    group_col = columns.group_col
    labels = raw[group_col].map(_norm_label)
    present = sorted({v for v in labels if v is not None})
    t_val, c_val = _group_values(present, source, columns)

    is_t, is_c = labels == t_val, labels == c_val
    other = ~(is_t | is_c)
    other_counts = labels[other].fillna("<empty>").value_counts()
    frame = pd.DataFrame(
        {
            "group": is_t[~other].map({True: uplift.TREATMENT, False: uplift.HOLDOUT}),
            "converted": raw.loc[~other, columns.outcome_col],
        }
    )
    for core, user in columns.optional_by_core():
        if user:
            frame[core] = raw.loc[~other, user]
    frame = frame.reset_index(drop=True)
    if not is_t.any():
        raise DmpError(
            f"{source}: no rows with {group_col} = {t_val!r} (treatment); values are {present[:10]}"
        )
    if not is_c.any():
        raise DmpError(f"{source}: no rows with {group_col} = {c_val!r} (control); values are {present[:10]}")
    info: dict[str, Any] = {
        "input": source,
        "group_col": group_col,
        "outcome_col": columns.outcome_col,
        "value_col": columns.value_col,
        "score_col": columns.score_col,
        "pre_outcome_col": columns.pre_outcome_col,
        "treatment_value": t_val,
        "control_value": c_val,
        "rows_read": len(raw),
        "other_group_rows": int(other.sum()),
        "other_group_values": {str(k): int(v) for k, v in other_counts.head(10).items()},
    }
    return frame, info


def _user_column_names(message: str, columns: ExternalColumns) -> str:
    """The core's error with the user's column names in place of the core's."""
    for core, user in (
        ("pre_converted", columns.pre_outcome_col),
        ("converted", columns.outcome_col),
        ("value", columns.value_col),
        ("score", columns.score_col),
    ):
        if user:
            message = message.replace(f"column {core!r}", f"column {user!r}")
    return message


def evaluate_file(
    path: str | Path,
    out_dir: str | Path,
    columns: ExternalColumns,
    expected_holdout_share: float | None = None,
) -> Evaluation:
    """The same statistics on an external CSV/Parquet table; no Spark involved.

    ``out_dir`` is a local folder or an ``s3://`` prefix (:mod:`dmp.steps.report_store`);
    ``expected_holdout_share`` the control group's share the design asked for (the sample ratio
    check; without it the check is not run and ``srm_note`` says so).
    """
    from dmp.stats.srm import check_holdout_share
    from dmp.steps.report_store import write_report

    if expected_holdout_share is not None:
        expected_holdout_share = check_holdout_share(expected_holdout_share, "--expected-holdout-share")
    source = str(path)
    frame, info = prepare_external(read_table_file(path), source, columns)
    try:
        report = uplift.evaluate_experiment(
            frame, source=source, expected_holdout_share=expected_holdout_share
        )
    except DmpError as exc:
        raise DmpError(_user_column_names(str(exc), columns)) from None
    report.update(info)
    if info["other_group_rows"]:
        report["warnings"].append(
            f"{info['other_group_rows']} row(s) in neither group were ignored: {info['other_group_values']}"
        )
    report["title"] = f"Uplift report: {Path(source).name}"
    report["evaluated_at"] = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    json_path, html_path = write_report(str(out_dir), report, frame)
    return Evaluation(report, json_path, html_path)
