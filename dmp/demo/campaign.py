"""The planted ``spring_revisit`` campaign: potential outcomes, planted events and the truth files.

It follows the potential-outcomes recipe of the brief: eligibility is exactly the store_revisit
rule on the normal events; ``y0`` = an S001 order in the 14 days after R under the normal process;
``y1 = y0 or planted`` where an extra S001 order is planted with probability ``planted_prob``;
treatment users get the planted events, holdout users
(``holdout_bucket(salt, segment, user_id) < 0.2``) do not.

Uplift types (``generate(..., uplift_types=True)``, for uplift targeting): the effect then depends on
the user's persona, which the tags reveal (categories, brands, coupon use, spend):

* ``sure_thing`` (bargain_hunter, beauty_fan, premium_buyer: regulars who buy in S001 anyway, with
  or without the campaign): an extra S001 order with probability ``SURE_THING_BASELINE`` is part of
  ``y0`` (both groups get it), and the campaign adds nothing;
* ``persuadable`` (gadget_lover, home_maker: they browse electronics and home goods in S001 and
  rarely buy unprompted): the normal, low base rate, and the campaign plants an order with
  probability ``PERSUADABLE_EFFECT``;
* ``other`` (casual): ``planted_prob`` as without types.

With types the campaign also runs a second time (its rerun), 14 days later, on the users the same
rule selects then (eligibility on every event so far, planted ones included): the held-out campaign
an uplift pack trained on the first run is judged on (``truth/campaign_rerun_users.csv``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TypedDict

import numpy as np

from dmp.contracts.errors import DmpError
from dmp.contracts.holdout import DEFAULT_SALT, holdout_bucket
from dmp.demo.model import STORE_INDEX, CatalogModel
from dmp.demo.personas import PERSONAS, UserParams
from dmp.demo.sampling import SECONDS_PER_DAY, diurnal_seconds, pick
from dmp.demo.simulate import CART_ADD, FAVORITE, ORDER, VIEW, EventRows, Events

CAMPAIGN_SEGMENT = "spring_revisit"
CAMPAIGN_STORE = "S001"
CAMPAIGN_WINDOW_DAYS = 14
CAMPAIGN_ATTRIBUTION_DAYS = 14
CAMPAIGN_HOLDOUT = 0.2
CAMPAIGN_SALT = DEFAULT_SALT
CAMPAIGN_BEHAVIORS = ("view", "cart_add", "favorite")

TRUTH_HEADER = ("user_id", "segment", "group", "bucket", "y0", "y1", "value0", "value1")
# With uplift types the truth rows end with the user's type (without, the file is byte-for-byte as before).
TYPED_TRUTH_HEADER = (*TRUTH_HEADER, "uplift_type")
# n, n_treatment, sum y0, sum y1, sum value0, sum value1, realised conversions: treatment, holdout
TRUTH_SUMS = ("n", "n_treatment", "y0", "y1", "value0", "value1", "conv_treatment", "conv_holdout")
TruthRow = tuple[str | int, ...]  # TRUTH_HEADER, or TYPED_TRUTH_HEADER with uplift types

# Uplift types by persona (module docstring).
UPLIFT_TYPE_NAMES: tuple[str, ...] = ("other", "sure_thing", "persuadable")
UPLIFT_TYPE_BY_PERSONA: dict[str, str] = {
    "casual": "other",
    "bargain_hunter": "sure_thing",
    "home_maker": "persuadable",
    "beauty_fan": "sure_thing",
    "gadget_lover": "persuadable",
    "premium_buyer": "sure_thing",
}
SURE_THING_BASELINE = 0.9
PERSUADABLE_EFFECT = 0.6
# The rerun's run date is the first run's plus this (its window closes 14 days later).
RERUN_AFTER_DAYS = CAMPAIGN_ATTRIBUTION_DAYS


class CampaignTruth(TypedDict):
    """One entry of truth/campaigns.json (also ``GenerateSummary.campaign``)."""

    segment: str
    kind: str
    run_date: str
    window_days: int
    eligibility_window: list[str]
    behaviors: list[str]
    exclude_purchasers: bool
    scope: dict[str, list[str]]
    attribution_window_days: int
    attribution_window: list[str]
    outcome: str
    holdout: float
    salt: str
    planted_prob: float
    n_eligible: int
    n_treatment: int
    n_holdout: int
    rate_y0: float | None
    rate_y1: float | None
    true_uplift_abs: float | None
    true_uplift_value: float | None
    realised_rate_treatment: float | None
    realised_rate_holdout: float | None
    realised_uplift_abs: float | None


def campaign_run_date(start: date, days: int, campaign_date: date | None = None) -> date:
    """R: by default the last generated day minus 14, so the 14-day attribution window fits."""
    last = start + timedelta(days=days - 1)
    if campaign_date is None:
        if days < CAMPAIGN_ATTRIBUTION_DAYS + 1:
            raise DmpError(
                f"--days: the planted campaign needs at least {CAMPAIGN_ATTRIBUTION_DAYS + 1} days "
                f"(run date = last day - {CAMPAIGN_ATTRIBUTION_DAYS}), got {days}; pass --no-campaign"
            )
        return last - timedelta(days=CAMPAIGN_ATTRIBUTION_DAYS)
    if not start <= campaign_date <= last - timedelta(days=CAMPAIGN_ATTRIBUTION_DAYS):
        raise DmpError(
            f"--campaign-date: expected a date between {start} and "
            f"{last - timedelta(days=CAMPAIGN_ATTRIBUTION_DAYS)} (the {CAMPAIGN_ATTRIBUTION_DAYS}-day "
            f"attribution window must fit in the generated days), got {campaign_date}"
        )
    return campaign_date


@dataclass(frozen=True)
class _Outcomes:
    """Per user of the chunk: eligible for the campaign, and the no-campaign outcome y0 / value0."""

    eligible: np.ndarray
    y0: np.ndarray
    value0: np.ndarray


@dataclass(frozen=True)
class _PlantedOrders:
    """The extra S001 order every user of the chunk would get if planted (drawn for all users)."""

    planted: np.ndarray
    times: tuple[np.ndarray, np.ndarray, np.ndarray]  # view, cart_add, order
    sku: np.ndarray
    brand: np.ndarray
    cat: np.ndarray
    channel: np.ndarray


def _outcomes(ev: Events, n: int, model: CatalogModel, run_day: int) -> _Outcomes:
    """Eligibility (the store_revisit rule on the normal events) and the normal-process outcome."""
    s001 = STORE_INDEX[CAMPAIGN_STORE]
    day = ev["t"] // SECONDS_PER_DAY
    in_store = ev["store"] == s001
    in_window = (day >= run_day - CAMPAIGN_WINDOW_DAYS + 1) & (day <= run_day)
    engaged = in_store & in_window & np.isin(ev["et"], [VIEW, CART_ADD, FAVORITE])
    bought = in_store & in_window & (ev["et"] == ORDER)
    eligible = np.zeros(n, bool)
    eligible[ev["u"][engaged]] = True
    eligible[ev["u"][bought]] = False

    after = in_store & (ev["et"] == ORDER) & (day > run_day) & (day <= run_day + CAMPAIGN_ATTRIBUTION_DAYS)
    y0 = np.zeros(n, bool)
    y0[ev["u"][after]] = True
    price = model.catalog.sku_price
    value0 = np.bincount(ev["u"][after], weights=price[ev["sku"][after]] * ev["qty"][after], minlength=n)
    return _Outcomes(eligible, y0, value0)


def uplift_types(users: UserParams) -> np.ndarray:
    """Each user's uplift type, an index into :data:`UPLIFT_TYPE_NAMES` (from the persona)."""
    by_persona = np.array([UPLIFT_TYPE_NAMES.index(UPLIFT_TYPE_BY_PERSONA[p.name]) for p in PERSONAS])
    return by_persona[users.persona]


def _draw_planted(
    rng: np.random.Generator,
    users: UserParams,
    model: CatalogModel,
    run_day: int,
    planted_prob: float | np.ndarray,
) -> _PlantedOrders:
    """Draws for every user of the chunk (not only the eligible) keep the stream aligned."""
    n = len(users.persona)
    s001 = STORE_INDEX[CAMPAIGN_STORE]
    planted = rng.random(n) < planted_prob
    pday = run_day + 1 + rng.integers(0, CAMPAIGN_ATTRIBUTION_DAYS, n)
    pcat = pick(users.cat_w, rng.random(n))
    our_brands = (model.cell_of[s001, :, :] >= 0).astype(float)  # brand x category sold at S001
    pbrand = pick(users.brand_w * our_brands[:, pcat].T, rng.random(n))
    psku = model.pick_sku(rng, users.price_level, model.cell_of[s001, pbrand, pcat])
    tview = pday * SECONDS_PER_DAY + diurnal_seconds(rng, n)
    dend = pday * SECONDS_PER_DAY + SECONDS_PER_DAY - 1
    tcart = np.minimum(tview + rng.integers(10, 300, n), dend)
    tord = np.minimum(tcart + rng.integers(30, 900, n), dend)
    pchan = pick(users.channel_w, rng.random(n))
    return _PlantedOrders(planted, (tview, tcart, tord), psku, pbrand, pcat, pchan)


def plant_campaign(
    rng: np.random.Generator,
    users: UserParams,
    ev: Events,
    model: CatalogModel,
    run_day: int,
    planted_prob: float,
    user_ids: list[str],
    *,
    with_types: bool = False,
) -> tuple[Events, list[TruthRow]]:
    """Potential outcomes for the eligible users of this chunk; returns (planted events, truth rows).

    ``with_types``: the effect by uplift type (module docstring); the sure things' baseline orders
    are drawn after the campaign's, so without types the stream and every byte stay as they were.
    """
    n = len(users.persona)
    normal = _outcomes(ev, n, model, run_day)
    eligible = normal.eligible
    types = uplift_types(users) if with_types else np.zeros(n, dtype=np.int64)
    prob: float | np.ndarray = planted_prob
    if with_types:
        prob = np.array([planted_prob, 0.0, PERSUADABLE_EFFECT])[types]
    extra = _draw_planted(rng, users, model, run_day, prob)
    y0, value0 = normal.y0, normal.value0
    baseline_events: list[Events] = []
    if with_types:
        base = _draw_planted(rng, users, model, run_day, np.where(types == 1, SURE_THING_BASELINE, 0.0))
        got = base.planted & eligible
        y0 = y0 | got
        value0 = value0 + np.where(got, model.catalog.sku_price[base.sku], 0.0)
        baseline_events.append(_planted_events(base, got))

    idx = np.nonzero(eligible)[0]
    bucket = np.array([holdout_bucket(CAMPAIGN_SALT, CAMPAIGN_SEGMENT, user_ids[i]) for i in idx])
    treated = np.zeros(n, bool)
    treated[idx] = bucket >= CAMPAIGN_HOLDOUT
    y1 = y0 | (extra.planted & eligible)
    value1 = value0 + np.where(extra.planted & eligible, model.catalog.sku_price[extra.sku], 0.0)
    labels = [(UPLIFT_TYPE_NAMES[t],) if with_types else () for t in types.tolist()]
    truth: list[TruthRow] = [
        (
            user_ids[i],
            CAMPAIGN_SEGMENT,
            "treatment" if treated[i] else "holdout",
            f"{b:.6f}",
            int(y0[i]),
            int(y1[i]),
            f"{value0[i]:.2f}",
            f"{value1[i]:.2f}",
            *labels[i],
        )
        for i, b in zip(idx, bucket, strict=True)
    ]
    planted = _planted_events(extra, extra.planted & treated)
    for block in baseline_events:
        planted = {k: np.concatenate([planted[k], block[k]]) for k in planted}
    return planted, truth


def _planted_events(extra: _PlantedOrders, write: np.ndarray) -> Events:
    """The view, cart_add and order of the planted purchase, for the users in ``write``."""
    rows = EventRows()
    pstore = np.full(len(write), STORE_INDEX[CAMPAIGN_STORE])
    for t, et in zip(extra.times, (VIEW, CART_ADD, ORDER), strict=True):
        rows.add(
            u=np.nonzero(write)[0],
            t=t[write],
            et=et,
            sku=extra.sku[write],
            store=pstore[write],
            brand=extra.brand[write],
            cat=extra.cat[write],
            qty=1,
            channel=extra.channel[write],
        )
    return rows.concat()


def truth_sums(rows: list[TruthRow]) -> np.ndarray:
    """The :data:`TRUTH_SUMS` of one chunk's truth rows (chunks add up)."""
    if not rows:
        return np.zeros(len(TRUTH_SUMS))
    treat = np.array([r[2] == "treatment" for r in rows])
    y0 = np.array([r[4] for r in rows], dtype=float)
    y1 = np.array([r[5] for r in rows], dtype=float)
    v0 = np.array([float(r[6]) for r in rows])
    v1 = np.array([float(r[7]) for r in rows])
    return np.array(
        [len(rows), treat.sum(), y0.sum(), y1.sum(), v0.sum(), v1.sum(), y1[treat].sum(), y0[~treat].sum()]
    )


def _ratio(x: float, d: int) -> float | None:
    return round(x / d, 6) if d else None


def campaign_truth(sums: np.ndarray, run_date: date, planted_prob: float) -> CampaignTruth:
    """The campaigns.json entry: the campaign as a spec would state it plus its true effect."""
    t = dict(zip(TRUTH_SUMS, sums.tolist(), strict=True))
    n, n_treat = int(t["n"]), int(t["n_treatment"])
    n_hold = n - n_treat
    rate_t, rate_h = _ratio(t["conv_treatment"], n_treat), _ratio(t["conv_holdout"], n_hold)
    return {
        "segment": CAMPAIGN_SEGMENT,
        "kind": "store_revisit",
        "run_date": run_date.isoformat(),
        "window_days": CAMPAIGN_WINDOW_DAYS,
        "eligibility_window": [
            (run_date - timedelta(days=CAMPAIGN_WINDOW_DAYS - 1)).isoformat(),
            run_date.isoformat(),
        ],
        "behaviors": list(CAMPAIGN_BEHAVIORS),
        "exclude_purchasers": True,
        "scope": {"store_ids": [CAMPAIGN_STORE]},
        "attribution_window_days": CAMPAIGN_ATTRIBUTION_DAYS,
        "attribution_window": [
            (run_date + timedelta(days=1)).isoformat(),
            (run_date + timedelta(days=CAMPAIGN_ATTRIBUTION_DAYS)).isoformat(),
        ],
        "outcome": f"an order in store {CAMPAIGN_STORE} in the attribution window; value = its GMV",
        "holdout": CAMPAIGN_HOLDOUT,
        "salt": CAMPAIGN_SALT,
        "planted_prob": planted_prob,
        "n_eligible": n,
        "n_treatment": n_treat,
        "n_holdout": n_hold,
        "rate_y0": _ratio(t["y0"], n),
        "rate_y1": _ratio(t["y1"], n),
        "true_uplift_abs": _ratio(t["y1"] - t["y0"], n),
        "true_uplift_value": _ratio(t["value1"] - t["value0"], n),
        "realised_rate_treatment": rate_t,
        "realised_rate_holdout": rate_h,
        "realised_uplift_abs": round(rate_t - rate_h, 6)
        if rate_t is not None and rate_h is not None
        else None,
    }


def write_campaign_truth(
    out: Path,
    sums: np.ndarray,
    run_date: date,
    planted_prob: float,
    rerun_sums: np.ndarray | None = None,
) -> CampaignTruth:
    """Write ``truth/campaigns.json`` (the campaign, then its rerun when there is one) and return
    the campaign's entry."""
    info = campaign_truth(sums, run_date, planted_prob)
    entries = [info]
    if rerun_sums is not None:
        entries.append(campaign_truth(rerun_sums, run_date + timedelta(days=RERUN_AFTER_DAYS), planted_prob))
    (out / "truth" / "campaigns.json").write_text(json.dumps(entries, indent=2) + "\n")
    return info
