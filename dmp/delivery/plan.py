"""The file plan of one delivery: which rows go into which files (pure, driver side, pandas).

A pack is collected to the driver before planning (see :mod:`dmp.steps.deliver` for why). From the
channel's sorted rows and, for an incremental channel, the rows of the delivery it is diffed
against, :func:`plan_delivery` decides the mode (``full`` or ``incremental``), the parts
(``full`` or ``add`` + ``remove``), their encoded files and the rows to keep in
``ops/delivery_state`` for the next diff. Same input, same bytes: rows are sorted and gzip is
written with ``mtime=0`` and no file name.
"""

from __future__ import annotations

import gzip
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd

from dmp.contracts.channels import Channel
from dmp.contracts.errors import DmpError
from dmp.delivery.targets import CouponSettings

ROWS_PER_FILE = 2_000_000

AD_COLUMNS = ("id_type", "user_key")
AD_KEY = ("id_type", "user_key")
COUPON_COLUMNS = ("user_key", "coupon_id", "value", "threshold", "valid_from", "valid_to")
COUPON_KEY = ("user_key", "coupon_id")

# name -> (encoded bytes, rows), e.g. {"add/part-00000.csv.gz": (b"...", 12)}
EncodedFiles = dict[str, tuple[bytes, int]]


@dataclass(frozen=True)
class PreviousDelivery:
    """The delivery an incremental one is diffed against, and the rows it left downstream."""

    run_date: date
    folder: str
    manifest_sha256: str
    rows: pd.DataFrame

    def reference(self) -> dict[str, str]:
        """The manifest's ``previous``: how a client checks it holds exactly this delivery."""
        return {
            "run_date": self.run_date.isoformat(),
            "path": self.folder,
            "manifest_sha256": self.manifest_sha256,
        }


@dataclass(frozen=True)
class DeliveryPlan:
    """What one delivery sends: mode, rows per kind, the encoded files and the state to keep."""

    mode: str  # full | incremental
    current: pd.DataFrame  # every row the channel holds after this delivery
    parts: dict[str, pd.DataFrame]  # {"full": rows} or {"add": rows, "remove": rows}
    files: EncodedFiles
    previous: PreviousDelivery | None
    state: pd.DataFrame | None  # rows for ops/delivery_state (incremental channels only)

    @property
    def added(self) -> int | None:
        return len(self.parts["add"]) if "add" in self.parts else None

    @property
    def removed(self) -> int | None:
        return len(self.parts["remove"]) if "remove" in self.parts else None


def empty_rows(columns: tuple[str, ...] | list[str]) -> pd.DataFrame:
    """No rows, string columns: what a missing state or an empty file reads as."""
    return pd.DataFrame({c: pd.Series(dtype=str) for c in columns})


def columns_for(channel: Channel) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(file columns, key columns) of a channel type (docs/downstream.md, data files)."""
    return (COUPON_COLUMNS, COUPON_KEY) if channel.type == "coupon" else (AD_COLUMNS, AD_KEY)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _sorted(rows: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    return rows[cols].sort_values(cols, kind="mergesort").reset_index(drop=True)


def output_rows(
    keys_pdf: pd.DataFrame, channel: Channel, coupon: CouponSettings | None, run_date: date
) -> pd.DataFrame:
    """Sorted, de-duplicated delivery rows (all strings) in the channel's column order.

    Coupons are valid from the day after the run date for ``valid_days`` days, R+1 … R+valid_days:
    the first days of the attribution window R+1 … R+attribution_days that evaluates the campaign
    (the spec model rejects ``valid_days > attribution_days``, so every redemption is counted).
    """
    if channel.type == "coupon":
        if coupon is None:
            raise DmpError(
                "coupon channel needs the spec's coupon: {coupon_id, value, threshold, valid_days}"
            )
        out = pd.DataFrame({"user_key": keys_pdf["user_key"].astype(str)})
        out["coupon_id"] = coupon.coupon_id
        out["value"] = _num(coupon.value)
        out["threshold"] = _num(coupon.threshold)
        out["valid_from"] = (run_date + timedelta(days=1)).isoformat()
        out["valid_to"] = (run_date + timedelta(days=coupon.valid_days)).isoformat()
        cols = list(COUPON_COLUMNS)
    else:
        out = keys_pdf[list(AD_COLUMNS)].astype(str)
        cols = list(AD_COLUMNS)
    return _sorted(out[cols].drop_duplicates(), cols)


def diff_rows(
    current: pd.DataFrame, previous: pd.DataFrame, key: tuple[str, ...]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(add, remove): rows whose key is new today / rows whose key was delivered last time but not today."""
    keys = list(key)
    cur_keys = current[keys].drop_duplicates()
    prev_keys = previous[keys].drop_duplicates()
    add = current.merge(prev_keys, on=keys, how="left", indicator=True)
    add = add[add["_merge"] == "left_only"].drop(columns="_merge")
    remove = previous.merge(cur_keys, on=keys, how="left", indicator=True)
    remove = remove[remove["_merge"] == "left_only"].drop(columns="_merge")
    cols = list(current.columns)
    return _sorted(add, cols), _sorted(remove, cols)


def csv_text(rows: pd.DataFrame) -> str:
    """UTF-8 CSV with a header and ``\\n`` line ends (delivered files and the client's current.csv)."""
    return rows.to_csv(index=False, lineterminator="\n")


def encode_csv_gz(rows: pd.DataFrame) -> bytes:
    """:func:`csv_text`, gzip with mtime 0 and no file name: same rows, same bytes."""
    return gzip.compress(csv_text(rows).encode("utf-8"), compresslevel=6, mtime=0)


def build_files(parts: Mapping[str, pd.DataFrame], rows_per_file: int = ROWS_PER_FILE) -> EncodedFiles:
    """``{kind: rows}`` -> ``{"kind/part-00000.csv.gz": (bytes, rows)}``; an empty kind still gets one file."""
    files: EncodedFiles = {}
    for kind, rows in parts.items():
        chunks = max(1, -(-len(rows) // rows_per_file))
        for i in range(chunks):
            chunk = rows.iloc[i * rows_per_file : (i + 1) * rows_per_file]
            files[f"{kind}/part-{i:05d}.csv.gz"] = (encode_csv_gz(chunk), len(chunk))
    return files


def diff_base_date(channel: Channel, delivered: list[date], run_date: date) -> date | None:
    """The run date an incremental delivery diffs against: the last delivered one before it."""
    if channel.sync != "incremental":
        return None
    earlier = [d for d in delivered if d < run_date]
    return earlier[-1] if earlier else None


def later_deliveries_in_the_way(run_date: date, delivered: list[date], batch: list[date]) -> list[date]:
    """Delivered dates after ``run_date`` that this batch does not re-deliver too ([] if none).

    Rewriting a day with different content breaks the ``previous`` chain of every later day, so
    the later days must be re-delivered in the same batch.
    """
    later = [d for d in delivered if d > run_date]
    return later if later and not set(later) <= set(batch) else []


def plan_delivery(
    current: pd.DataFrame,
    previous: PreviousDelivery | None,
    channel: Channel,
    rows_per_file: int = ROWS_PER_FILE,
) -> DeliveryPlan:
    """Full files, or add/remove against ``previous`` (incremental channels with a diff base).

    ``previous`` is None for full channels, for the first delivery of an incremental channel and
    when the last delivery was made while the channel was still ``full`` (no state was kept then).
    """
    _cols, key = columns_for(channel)
    if channel.sync == "incremental" and previous is not None:
        add, remove = diff_rows(current, previous.rows, key)
        parts = {"add": add, "remove": remove}
        mode = "incremental"
    else:
        parts = {"full": current}
        mode = "full"
        previous = None
    state = current if channel.sync == "incremental" else None
    return DeliveryPlan(mode, current, parts, build_files(parts, rows_per_file), previous, state)
