"""The generator's parts on their own: draws, event rows, JSON lines, bad-line merge, identities, truth."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from dmp.contracts.errors import DmpError
from dmp.contracts.vocab import ID_TYPES
from dmp.demo.campaign import TRUTH_SUMS, campaign_run_date, campaign_truth, truth_sums
from dmp.demo.catalog import build_catalog
from dmp.demo.chunks import FileStats, _with_bad_lines
from dmp.demo.formatting import EPOCH_MILLIS, EPOCH_SECONDS, ISO_TIME, EventFormatter
from dmp.demo.generate import default_chunk_users
from dmp.demo.identities import _luhn, identities
from dmp.demo.model import CatalogModel
from dmp.demo.sampling import SECONDS_PER_DAY, n_weeks, pick, stream
from dmp.demo.simulate import EVENT_COLUMNS, ORDER, SEARCH, VIEW, EventRows

START = date(2026, 9, 1)


def test_pick_follows_the_cumulative_weights() -> None:
    weights = np.array([[1.0, 1.0, 2.0], [0.0, 5.0, 0.0]])
    # row 0: cumulative 1, 2, 4 -> r * 4 below 1 is index 0, below 2 index 1, else 2
    assert pick(weights[[0, 0, 0, 0]], np.array([0.1, 0.3, 0.6, 0.99])).tolist() == [0, 1, 2, 2]
    assert pick(weights[[1, 1]], np.array([0.01, 0.99])).tolist() == [1, 1]  # zero weights are never drawn


def test_streams_are_independent_and_repeatable() -> None:
    assert stream(7, 0, 0).random() == stream(7, 0, 0).random()
    assert stream(7, 0, 0).random() != stream(7, 0, 1).random()
    assert stream(7, 0, 0).random() != stream(7, 1, 0).random()
    assert [n_weeks(d) for d in (1, 7, 8, 14, 15)] == [1, 1, 2, 2, 3]


def test_event_rows_fill_missing_columns_with_minus_one() -> None:
    rows = EventRows()
    rows.add(u=np.array([3, 4]), t=np.array([10, 20]), et=SEARCH, cat=np.array([1, 2]))
    rows.add(u=np.array([], dtype=int), t=np.array([], dtype=int), et=VIEW)  # empty blocks are dropped
    ev = rows.concat()
    assert tuple(ev) == EVENT_COLUMNS
    assert ev["et"].tolist() == [SEARCH, SEARCH] and ev["sku"].tolist() == [-1, -1]
    assert ev["cat"].tolist() == [1, 2] and ev["coupon"].tolist() == [-1, -1]
    assert {k: v.tolist() for k, v in EventRows().concat().items()} == {k: [] for k in EVENT_COLUMNS}


def _one_event(**cols: int) -> dict[str, np.ndarray]:
    base = dict.fromkeys(EVENT_COLUMNS, -1) | {"u": 0, "t": 0, "et": VIEW, "channel": 0} | cols
    return {k: np.array([v], dtype=np.int64) for k, v in base.items()}


def test_formatter_writes_what_json_dumps_would() -> None:
    model = CatalogModel(build_catalog())
    fmt = EventFormatter(model, START, 2)
    ev = _one_event(t=SECONDS_PER_DAY + 3723, et=ORDER, sku=0, store=0, brand=0, cat=0, qty=2, channel=1)
    line = fmt.lines(ev, 3, 41, ["u0000001"], np.array([ISO_TIME]), np.array([0]))[0]
    cat = model.catalog
    store, brand, category = cat.cells[cat.sku_cell[0]]
    expected = {
        "event_id": "e-00003000000041",
        "event_time": "2026-09-02T01:02:03Z",
        "user_id": "u0000001",
        "event_type": "order",
        "sku_id": "K00001",
        "store_id": store,
        "brand_id": brand,
        "category_id": category,
        "price": float(cat.sku_price[0]),
        "quantity": 2,
        "channel": "pc",
        "coupon_id": None,
    }
    assert line == json.dumps(expected)
    search = _one_event(et=SEARCH, cat=2)
    rec = json.loads(fmt.lines(search, 0, 0, ["u0000001"], np.array([EPOCH_SECONDS]), np.array([0]))[0])
    assert (rec["sku_id"], rec["store_id"], rec["category_id"], rec["quantity"]) == (None, None, "C03", None)
    assert rec["event_time"] == int(fmt.epoch0) == 1788220800  # 2026-09-01T00:00:00Z
    millis = json.loads(fmt.lines(search, 0, 0, ["u0000001"], np.array([EPOCH_MILLIS]), np.array([250]))[0])
    assert millis["event_time"] == 1788220800250


def test_bad_lines_go_after_the_valid_line_at_their_position() -> None:
    stats = FileStats()
    merged = _with_bad_lines(["a", "b", "c"], [(1, "bad_price", "x"), (0, "malformed_json", "y")], stats)
    assert merged == ["a", "y", "b", "x", "c"]
    assert stats.bad_counts["bad_price"] == stats.bad_counts["malformed_json"] == 1


def test_identity_lines_are_well_formed() -> None:
    assert _luhn("49015420323751") == "8"  # a textbook IMEI: 490154203237518
    nums = np.arange(1, 201)
    lines, counts, no_ids = identities(stream(1, 0, 4), nums, np.array([0, 1] * 100), seed=1)
    assert list(counts) == list(ID_TYPES) and sum(counts.values()) == len(lines)
    records = [json.loads(line) for line in lines]
    assert {r["id_type"] for r in records} <= set(ID_TYPES)
    assert 200 - len({r["user_id"] for r in records}) == no_ids
    for r in records:
        if r["id_type"] == "imei":
            digits = r["id_value"].strip()
            assert len(digits) == 15 and _luhn(digits[:14]) == digits[14]
        if r["id_type"] == "phone":
            assert "".join(ch for ch in r["id_value"] if ch.isdigit()).removeprefix("86")[:1] == "1"


def test_campaign_run_date_and_truth() -> None:
    assert campaign_run_date(START, 30) == date(2026, 9, 16)
    assert campaign_run_date(START, 30, date(2026, 9, 5)) == date(2026, 9, 5)
    with pytest.raises(DmpError, match="at least 15 days"):
        campaign_run_date(START, 14)
    with pytest.raises(DmpError, match="--campaign-date"):
        campaign_run_date(START, 30, date(2026, 9, 17))
    rows = [
        ("u1", "s", "treatment", "0.5", 0, 1, "0.00", "10.00"),
        ("u2", "s", "treatment", "0.6", 1, 1, "5.00", "5.00"),
        ("u3", "s", "holdout", "0.1", 0, 0, "0.00", "3.00"),
        ("u4", "s", "holdout", "0.1", 1, 1, "2.00", "2.00"),
    ]
    sums = truth_sums(rows)
    assert dict(zip(TRUTH_SUMS, sums.tolist(), strict=True)) == {
        "n": 4, "n_treatment": 2, "y0": 2, "y1": 3, "value0": 7, "value1": 20, "conv_treatment": 2,
        "conv_holdout": 1,
    }  # fmt: skip
    assert truth_sums([]).tolist() == [0.0] * len(TRUTH_SUMS)
    info = campaign_truth(sums, date(2026, 9, 16), 0.06)
    assert (info["n_eligible"], info["n_treatment"], info["n_holdout"]) == (4, 2, 2)
    assert (info["rate_y0"], info["true_uplift_abs"], info["true_uplift_value"]) == (0.5, 0.25, 3.25)
    assert (info["realised_rate_treatment"], info["realised_rate_holdout"], info["realised_uplift_abs"]) == (
        1.0,
        0.5,
        0.5,
    )
    assert info["eligibility_window"] == ["2026-09-03", "2026-09-16"]
    assert info["attribution_window"] == ["2026-09-17", "2026-09-30"]
    empty = campaign_truth(np.zeros(len(TRUTH_SUMS)), date(2026, 9, 16), 0.06)
    assert empty["rate_y0"] is None and empty["realised_uplift_abs"] is None


def test_default_chunk_users_bounds_memory() -> None:
    assert [default_chunk_users(d) for d in (1, 30, 120, 365)] == [20_000, 20_000, 5_000, 5_000]
    assert default_chunk_users(60) == 10_000


def test_output_folder_that_is_a_file_is_refused(tmp_path: Path) -> None:
    from dmp.demo.generate import generate

    target = tmp_path / "f"
    target.write_text("x")
    with pytest.raises(DmpError, match="expected a folder"):
        generate(target, 10, 3, campaign=False)
