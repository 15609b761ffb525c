"""Deterministic demo data: behaviour logs, identities, suppression list and ground truth.

``generate(out, users, days, seed, start)`` writes the layout of the brief's cross-team contract::

    out/catalog.json                                   catalogue, personas, rates, lookalike hint
    out/events/event_date=YYYY-MM-DD/part-NNNNN.jsonl  one file per (date, chunk of users)
    out/identities/identities.jsonl                    user -> oaid/idfa/imei/phone/email (raw, noisy)
    out/suppression/opt_out.csv                        ~1% of users
    out/truth/users.csv                                persona and behaviour parameters per user
    out/truth/bad_records.json                         bad lines per kind (they are EXTRA lines)
    out/truth/campaigns.json, campaign_users.csv       the planted spring_revisit campaign
    out/truth/summary.json                             everything in GenerateSummary

How the behaviour is simulated (all vectorised with numpy, one chunk of users at a time, so memory
is bounded by the chunk size and not by the number of events):

* every user has a persona (casual, bargain_hunter, home_maker, beauty_fan, gadget_lover,
  premium_buyer) that sets category and brand preferences, price level, funnel rates and coupon
  behaviour; each user's own parameters are drawn around the persona's (Gamma / Beta noise);
* heavy-tailed activity: a user is active on a day with probability ``p_active`` (Beta) and then
  views Poisson(``rate``) products, ``rate`` log-normal (sigma 0.9) -> a few very active users;
* each view picks category -> brand -> store -> SKU; a view may be preceded by a click and
  followed by a favourite and a cart_add; a cart_add may become an order (same day) or be removed;
* searches (category only) and coupons: coupon_receive for a (store, brand), redeemed within
  0-3 days with the user's coupon sensitivity; a redemption is a cart_add + order (carrying the
  coupon_id) + coupon_redeem;
* valid events per user per day: ~0.69 at 30 days (0.70 at 15, 0.67 at 90, 0.66 at 365: new
  users always show up on their first day, which weighs more in short histories; users who exist
  before the period have no such day, so no date is a spike);
  ``expected_events_per_user_day(days)`` measures it on a fixed pilot and ``--events N`` uses it
  to pick the number of users. Rough mix: views 57%, clicks 20%, searches 10%, cart_add 5%,
  favourites 2%, orders 2.7%, coupon_receive 2.2%, coupon_redeem 0.9%, cart_remove 0.8%.

Output layout depends on ``chunk_users`` (one file per date and chunk) but not on ``workers``:
chunks are independent (own random streams, own files) and the shared files are written in chunk
order, so ``--workers 2`` gives the very same bytes as one process.

Bad records are EXTRA lines (the valid events are exactly the simulated ones): malformed JSON,
unknown event types, missing user_id, exact duplicates, same-id-different-content duplicates
(placed after the original in the same file, 1-30 s LATER than it, so "earliest event_time wins"
keeps the original; they differ only in channel and those seconds, so any winner gives the same
daily aggregates), future timestamps (2099) and
unparseable prices. About 2% of the valid lines carry ``event_time`` as epoch seconds or
milliseconds (the contract allows both).

The planted campaign (``spring_revisit``) follows the potential-outcomes recipe of the brief:
eligibility is exactly the store_revisit rule on the normal events; ``y0`` = an S001 order in the
14 days after R under the normal process; ``y1 = y0 or planted`` where an extra S001 order is
planted with probability ``planted_prob``; treatment users get the planted events, holdout users
(``holdout_bucket(salt, segment, user_id) < 0.2``) do not.

Determinism: numpy generators seeded from ``SeedSequence([seed, chunk, stream])`` with separate
streams for behaviour, campaign, bad records and identities, so e.g. ``--bad-rate`` never changes
the valid events. Same arguments -> byte-identical files.
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np

from dmp.contracts.errors import DmpError
from dmp.contracts.holdout import DEFAULT_SALT
from dmp.contracts.vocab import EVENT_CHANNELS as CHANNELS
from dmp.contracts.vocab import EVENT_TYPES  # internal event type codes are indexes into this tuple
from dmp.demo.catalog import (
    BRAND_CATEGORIES,
    BRAND_STORES,
    BRANDS,
    CATEGORIES,
    STORES,
    Catalog,
    build_catalog,
)

DEFAULT_START = date(2026, 9, 1)
DEFAULT_DAYS = 30
DEFAULT_BAD_RATE = 0.002
DEFAULT_PLANTED_PROB = 0.06
DEFAULT_EPOCH_SHARE = 0.02

CAMPAIGN_SEGMENT = "spring_revisit"
CAMPAIGN_STORE = "S001"
CAMPAIGN_WINDOW_DAYS = 14
CAMPAIGN_ATTRIBUTION_DAYS = 14
CAMPAIGN_HOLDOUT = 0.2
CAMPAIGN_SALT = DEFAULT_SALT
CAMPAIGN_BEHAVIORS = ("view", "cart_add", "favorite")

VIEW, CLICK, SEARCH, CART_ADD, CART_REMOVE, FAVORITE, ORDER, COUPON_RECEIVE, COUPON_REDEEM = range(9)
# Tie-break inside one second so that a funnel reads in order: click, view, favorite, cart, order.
_RANK = np.array([1, 0, 0, 3, 6, 2, 4, 0, 5], dtype=np.int8)


BAD_KINDS: tuple[str, ...] = (
    "malformed_json",
    "unknown_event_type",
    "missing_user_id",
    "duplicate_exact",
    "duplicate_conflict",
    "future_timestamp",
    "bad_price",
)
_BAD_SHARES = np.array([0.2, 0.15, 0.15, 0.2, 0.1, 0.1, 0.1])

# Diurnal profile, weights per hour in China time (UTC+8), peak in the evening; rotated to UTC.
_CST_HOURS = np.array(
    [2, 1, 0.5, 0.3, 0.3, 0.5, 1, 2, 3, 4, 4.5, 5, 5.5, 5, 4.5, 4.5, 4.5, 5, 5.5, 6.5, 8, 8.5, 7, 4]
)
_UTC_HOUR_CUM = np.cumsum(np.roll(_CST_HOURS, -8) / _CST_HOURS.sum())
# Price preference: SKU weight within a cell multiplied by (price / cell median) ** exponent.
_PRICE_LEVELS = ("low", "mid", "high")
_PRICE_EXPONENT = np.array([-1.5, 0.0, 1.2])
_SECONDS_PER_DAY = 86400


@dataclass(frozen=True)
class Persona:
    name: str
    share: float
    description: str
    categories: tuple[float, ...]  # weights for C01..C06
    brands: tuple[float, ...]  # weights for B001, B002, B101, B102, B103, B104
    views_per_active_day: float  # mean of the log-normal rate
    active_share: float  # mean probability of being active on a given day
    cart_rate: float  # P(cart_add | view)
    order_rate: float  # P(order | cart_add)
    favorite_rate: float  # P(favorite | view)
    coupon_rate: float  # P(coupon_receive | active day)
    coupon_sensitivity: float  # mean P(redeem | receive)
    price_levels: tuple[float, float, float]  # share of users preferring low / mid / high prices


PERSONAS: tuple[Persona, ...] = (
    Persona("casual", 0.50, "broad interests, low activity", (1, 1.2, 0.8, 1.2, 1.3, 0.8),
            (1, 1, 1, 1, 1, 1), 2.2, 0.16, 0.07, 0.35, 0.03, 0.04, 0.2, (0.3, 0.6, 0.1)),
    Persona("bargain_hunter", 0.12, "coupon-heavy, cheap food and home goods", (0.8, 1, 0.5, 2.5, 3.5, 0.8),
            (0.8, 1.2, 0.8, 0.8, 1.5, 1.3), 2.5, 0.22, 0.08, 0.4, 0.02, 0.3, 0.65, (0.85, 0.15, 0.0)),
    Persona("home_maker", 0.12, "home, food and sports for the family", (0.6, 0.8, 0.4, 3, 2, 2.5),
            (1, 1.5, 0.6, 0.8, 1.8, 0.8), 2.0, 0.18, 0.08, 0.4, 0.03, 0.08, 0.3, (0.4, 0.5, 0.1)),
    Persona("beauty_fan", 0.10, "beauty (C01) first, loves B001 and competitor B101", (8, 1.2, 0.3, 0.5, 0.4, 0.3),
            (6, 0.5, 4, 0.4, 0.4, 0.6), 2.8, 0.24, 0.09, 0.42, 0.06, 0.1, 0.35, (0.2, 0.6, 0.2)),
    Persona("gadget_lover", 0.10, "electronics (C03): B002, B102, B104", (0.3, 0.5, 8, 0.6, 0.3, 1.2),
            (0.4, 4, 0.4, 4, 0.4, 3), 3.0, 0.22, 0.06, 0.3, 0.05, 0.06, 0.25, (0.2, 0.5, 0.3)),
    Persona("premium_buyer", 0.06, "expensive items, converts well, rarely uses coupons", (2, 3, 2, 1, 0.5, 1),
            (2.5, 1.5, 1.5, 0.7, 0.5, 0.7), 2.0, 0.2, 0.1, 0.5, 0.05, 0.03, 0.1, (0.0, 0.2, 0.8)),
)  # fmt: skip
LOOKALIKE_HINT = {
    "seed": "users who ordered brand B001 in category C01 (our beauty line)",
    "expected_persona": "beauty_fan",
    "why": "beauty_fan users concentrate on C01 with B001 and competitor B101; most of them never "
    "order B001 in C01 within a short window, so a lookalike seeded on the buyers should rank the "
    "rest of the beauty_fan persona far above the base rate",
}

_NS, _NB, _NC = len(STORES), len(BRANDS), len(CATEGORIES)
_CAT_INDEX = {c: i for i, c in enumerate(CATEGORIES)}
_BRAND_INDEX = {b: i for i, b in enumerate(BRANDS)}
_STORE_INDEX = {s: i for i, s in enumerate(STORES)}
# brand x category availability and brand -> store traffic share
_BRAND_CAT = np.zeros((_NB, _NC))
for _b, _cats in BRAND_CATEGORIES.items():
    for _c in _cats:
        _BRAND_CAT[_BRAND_INDEX[_b], _CAT_INDEX[_c]] = 1.0
_BRAND_STORE = np.zeros((_NB, _NS))
for _b, _shares in BRAND_STORES.items():
    for _s, _w in _shares.items():
        _BRAND_STORE[_BRAND_INDEX[_b], _STORE_INDEX[_s]] = _w


@dataclass
class GenerateSummary:
    out: str
    users: int
    days: int
    seed: int
    start: str
    end: str
    events_by_type: dict[str, int]
    events_total: int
    bad_records: dict[str, int]
    bad_total: int
    lines_total: int
    epoch_time_lines: int
    event_files: int
    files: dict[str, str]
    identities_by_type: dict[str, int]
    users_without_ids: int
    opted_out: int
    users_by_persona: dict[str, int]
    chunk_users: int
    campaign: dict | None = None
    events_per_user_day: float = field(default=0.0)

    def to_json(self) -> dict:
        return asdict(self)


# ----------------------------------------------------------------------------------------------
# numpy helpers


def _pick(weights: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Row-wise categorical draw: index i with probability weights[row, i] / sum(weights[row])."""
    cum = np.cumsum(weights, axis=1)
    idx = (cum < (r * cum[:, -1])[:, None]).sum(axis=1)
    return np.minimum(idx, weights.shape[1] - 1)


def _beta(rng: np.random.Generator, mean: np.ndarray, concentration: float) -> np.ndarray:
    mean = np.clip(mean, 1e-3, 1 - 1e-3)
    return rng.beta(mean * concentration, (1 - mean) * concentration)


def _diurnal_seconds(rng: np.random.Generator, n: int) -> np.ndarray:
    hour = np.searchsorted(_UTC_HOUR_CUM, rng.random(n) * _UTC_HOUR_CUM[-1], side="right")
    return np.minimum(hour, 23) * 3600 + rng.integers(0, 3600, n)


@dataclass
class _Users:
    persona: np.ndarray
    platform: np.ndarray  # 0 android, 1 ios
    price_level: np.ndarray
    rate: np.ndarray
    p_active: np.ndarray
    p_cart: np.ndarray
    p_order: np.ndarray
    p_fav: np.ndarray
    coupon_rate: np.ndarray
    coupon_sens: np.ndarray
    cat_w: np.ndarray  # U x C
    brand_w: np.ndarray  # U x B
    channel_w: np.ndarray  # U x 3
    is_new: np.ndarray  # joins during the generated period (join_day may still be 0)
    join_day: np.ndarray
    churn_day: np.ndarray  # first inactive day (== days when the user never churns)


def _draw_users(rng: np.random.Generator, n: int, days: int) -> _Users:
    shares = np.array([p.share for p in PERSONAS])
    persona = _pick(np.broadcast_to(shares, (n, len(shares))), rng.random(n))

    def per(attr: str) -> np.ndarray:
        return np.array([getattr(p, attr) for p in PERSONAS], dtype=float)[persona]

    levels = np.array([p.price_levels for p in PERSONAS])[persona]
    price_level = _pick(levels, rng.random(n))
    sigma = 0.9
    rate = np.exp(np.log(per("views_per_active_day")) - sigma**2 / 2 + sigma * rng.standard_normal(n))
    rate = np.minimum(rate, 60.0)
    cat_w = np.array([p.categories for p in PERSONAS])[persona] * rng.gamma(2.0, 0.5, (n, _NC))
    brand_w = np.array([p.brands for p in PERSONAS])[persona] * rng.gamma(2.0, 0.5, (n, _NB))
    channel_w = rng.dirichlet(np.array([0.62, 0.13, 0.25]) * 8, n)
    new_user = rng.random(n) < 0.25
    join_day = np.where(new_user, rng.integers(0, max(days, 1), n), 0)
    churns = rng.random(n) < 0.12
    churn_day = np.where(churns, join_day + 1 + (rng.random(n) * (days - join_day)).astype(int), days)
    return _Users(
        persona=persona,
        platform=(rng.random(n) < 0.28).astype(np.int8),
        price_level=price_level,
        rate=rate,
        p_active=_beta(rng, per("active_share"), 6.0),
        p_cart=_beta(rng, per("cart_rate"), 20.0),
        p_order=_beta(rng, per("order_rate"), 10.0),
        p_fav=_beta(rng, per("favorite_rate"), 20.0),
        coupon_rate=_beta(rng, per("coupon_rate"), 5.0),
        coupon_sens=_beta(rng, per("coupon_sensitivity"), 6.0),
        cat_w=cat_w,
        brand_w=brand_w,
        channel_w=channel_w,
        is_new=new_user,
        join_day=join_day,
        churn_day=np.minimum(churn_day, days),
    )


class _Rows:
    """Column blocks of events, concatenated once per chunk."""

    COLS = ("u", "t", "et", "sku", "store", "brand", "cat", "qty", "coupon", "channel")

    def __init__(self) -> None:
        self.blocks: list[dict[str, np.ndarray]] = []

    def add(self, **cols: np.ndarray | int) -> None:
        n = len(cols["u"])  # type: ignore[arg-type]
        if n == 0:
            return
        block = {}
        for name in self.COLS:
            value = cols.get(name, -1)
            block[name] = np.broadcast_to(np.asarray(value), (n,)).astype(np.int64)
        self.blocks.append(block)

    def concat(self) -> dict[str, np.ndarray]:
        if not self.blocks:
            return {name: np.zeros(0, dtype=np.int64) for name in self.COLS}
        return {name: np.concatenate([b[name] for b in self.blocks]) for name in self.COLS}


class _Model:
    """Lookup tables derived from the catalogue."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.cell_of = np.full((_NS, _NB, _NC), -1, dtype=np.int64)
        for i, (s, b, c) in enumerate(catalog.cells):
            self.cell_of[_STORE_INDEX[s], _BRAND_INDEX[b], _CAT_INDEX[c]] = i
        n_cells = len(catalog.cells)
        per_cell = len(catalog.sku_ids) // n_cells
        self.per_cell = per_cell
        price = catalog.sku_price.reshape(n_cells, per_cell)
        pop = catalog.sku_popularity.reshape(n_cells, per_cell)
        rel = price / np.median(price, axis=1, keepdims=True)
        self.sku_w = np.stack([pop * rel**e for e in _PRICE_EXPONENT])  # level x cell x k
        self.sku_store = np.array([_STORE_INDEX[catalog.cells[c][0]] for c in catalog.sku_cell])
        self.sku_brand = np.array([_BRAND_INDEX[catalog.cells[c][1]] for c in catalog.sku_cell])
        self.sku_cat = np.array([_CAT_INDEX[catalog.cells[c][2]] for c in catalog.sku_cell])

    def pick_sku(self, rng: np.random.Generator, level: np.ndarray, cell: np.ndarray) -> np.ndarray:
        k = _pick(self.sku_w[level, cell], rng.random(len(cell)))
        return cell * self.per_cell + k


def _simulate(
    rng: np.random.Generator, users: _Users, days: int, model: _Model, n_weeks: int
) -> dict[str, np.ndarray]:
    """The normal process for one chunk: every valid event, unsorted (``t`` = seconds from start)."""
    n = len(users.persona)
    rows = _Rows()
    day_idx = np.arange(days)
    active = rng.random((n, days)) < users.p_active[:, None]
    # A new user shows up on their first day. Users who exist before the period (join_day 0, not
    # new) are active on day 0 only with their usual p_active: forcing them too made the first day
    # ~5x any other (all existing users at once), a spike no real log has.
    active |= users.is_new[:, None] & (day_idx[None, :] == users.join_day[:, None])
    active &= (day_idx[None, :] >= users.join_day[:, None]) & (day_idx[None, :] < users.churn_day[:, None])
    act_u, act_d = np.nonzero(active)

    # views and their funnel
    n_views = rng.poisson(users.rate[act_u])
    vu = np.repeat(act_u, n_views)
    vd = np.repeat(act_d, n_views)
    nv = len(vu)
    cat = _pick(users.cat_w[vu], rng.random(nv))
    brand = _pick(users.brand_w[vu] * _BRAND_CAT[:, cat].T, rng.random(nv))
    store = _pick(_BRAND_STORE[brand], rng.random(nv))
    sku = model.pick_sku(rng, users.price_level[vu], model.cell_of[store, brand, cat])
    day_start = vd * _SECONDS_PER_DAY
    day_end = day_start + _SECONDS_PER_DAY - 1
    tv = day_start + _diurnal_seconds(rng, nv)
    channel = _pick(users.channel_w[vu], rng.random(nv))
    common = {"u": vu, "sku": sku, "store": store, "brand": brand, "cat": cat, "channel": channel}
    rows.add(t=tv, et=VIEW, qty=1, **common)

    clicked = rng.random(nv) < 0.35
    tclick = np.maximum(tv - rng.integers(2, 30, nv), day_start)
    faved = rng.random(nv) < users.p_fav[vu]
    tfav = np.minimum(tv + rng.integers(3, 120, nv), day_end)
    carted = rng.random(nv) < users.p_cart[vu]
    tcart = np.minimum(tv + rng.integers(10, 600, nv), day_end)
    qty = 1 + (rng.random(nv) < 0.15) + (rng.random(nv) < 0.04)
    ordered = carted & (rng.random(nv) < users.p_order[vu])
    torder = np.minimum(tcart + rng.integers(30, 1800, nv), day_end)
    removed = carted & ~ordered & (rng.random(nv) < 0.3)
    tremove = np.minimum(tcart + rng.integers(60, 3600, nv), day_end)
    for mask, t, et, q in (
        (clicked, tclick, CLICK, 1),
        (faved, tfav, FAVORITE, 1),
        (carted, tcart, CART_ADD, qty),
        (ordered, torder, ORDER, qty),
        (removed, tremove, CART_REMOVE, qty),
    ):
        sel = {k: v[mask] for k, v in common.items()}
        rows.add(t=t[mask], et=et, qty=q if np.isscalar(q) else q[mask], **sel)

    # searches: category only
    n_search = rng.poisson(0.4, len(act_u))
    su = np.repeat(act_u, n_search)
    sd = np.repeat(act_d, n_search)
    rows.add(
        u=su,
        t=sd * _SECONDS_PER_DAY + _diurnal_seconds(rng, len(su)),
        et=SEARCH,
        cat=_pick(users.cat_w[su], rng.random(len(su))),
        channel=_pick(users.channel_w[su], rng.random(len(su))),
    )

    # coupons: received for a (store, brand), redeemed within 0-3 days with the user's sensitivity
    got = rng.random(len(act_u)) < users.coupon_rate[act_u]
    cu, cd = act_u[got], act_d[got]
    nc = len(cu)
    cbrand = _pick(users.brand_w[cu], rng.random(nc))
    cstore = _pick(_BRAND_STORE[cbrand], rng.random(nc))
    coupon = (cstore * _NB + cbrand) * n_weeks + cd // 7
    trec = cd * _SECONDS_PER_DAY + _diurnal_seconds(rng, nc)
    cchan = _pick(users.channel_w[cu], rng.random(nc))
    rows.add(u=cu, t=trec, et=COUPON_RECEIVE, store=cstore, brand=cbrand, coupon=coupon, channel=cchan)
    delay = rng.integers(0, 4, nc)
    rday = cd + delay
    redeem = (rng.random(nc) < users.coupon_sens[cu]) & (rday < days) & (rday < users.churn_day[cu])
    rcat = _pick(users.cat_w[cu] * _BRAND_CAT[cbrand], rng.random(nc))
    rsku = model.pick_sku(rng, users.price_level[cu], model.cell_of[cstore, cbrand, rcat])
    rend = rday * _SECONDS_PER_DAY + _SECONDS_PER_DAY - 1
    t0 = np.where(
        delay == 0, trec + rng.integers(60, 7200, nc), rday * _SECONDS_PER_DAY + _diurnal_seconds(rng, nc)
    )
    t0 = np.minimum(t0, rend)
    tord = np.minimum(t0 + rng.integers(20, 600, nc), rend)
    r = redeem
    base = {"u": cu[r], "store": cstore[r], "brand": cbrand[r], "channel": cchan[r]}
    rows.add(t=t0[r], et=CART_ADD, sku=rsku[r], cat=rcat[r], qty=1, **base)
    rows.add(t=tord[r], et=ORDER, sku=rsku[r], cat=rcat[r], qty=1, coupon=coupon[r], **base)
    rows.add(t=tord[r], et=COUPON_REDEEM, coupon=coupon[r], **base)
    return rows.concat()


def _plant_campaign(
    rng: np.random.Generator,
    users: _Users,
    ev: dict[str, np.ndarray],
    model: _Model,
    run_day: int,
    planted_prob: float,
    user_ids: list[str],
) -> tuple[dict[str, np.ndarray], list[tuple]]:
    """Potential outcomes for the eligible users of this chunk; returns (planted events, truth rows)."""
    from dmp.contracts.holdout import holdout_bucket

    n = len(users.persona)
    s001 = _STORE_INDEX[CAMPAIGN_STORE]
    day = ev["t"] // _SECONDS_PER_DAY
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

    # Draws for every user of the chunk (not only the eligible) keep the stream aligned.
    planted = rng.random(n) < planted_prob
    pday = run_day + 1 + rng.integers(0, CAMPAIGN_ATTRIBUTION_DAYS, n)
    pcat = _pick(users.cat_w, rng.random(n))
    our_brands = (model.cell_of[s001, :, :] >= 0).astype(float)  # brand x category sold at S001
    pbrand = _pick(users.brand_w * our_brands[:, pcat].T, rng.random(n))
    psku = model.pick_sku(rng, users.price_level, model.cell_of[s001, pbrand, pcat])
    tview = pday * _SECONDS_PER_DAY + _diurnal_seconds(rng, n)
    dend = pday * _SECONDS_PER_DAY + _SECONDS_PER_DAY - 1
    tcart = np.minimum(tview + rng.integers(10, 300, n), dend)
    tord = np.minimum(tcart + rng.integers(30, 900, n), dend)
    pchan = _pick(users.channel_w, rng.random(n))

    idx = np.nonzero(eligible)[0]
    bucket = np.array([holdout_bucket(CAMPAIGN_SALT, CAMPAIGN_SEGMENT, user_ids[i]) for i in idx])
    treated = np.zeros(n, bool)
    treated[idx] = bucket >= CAMPAIGN_HOLDOUT
    y1 = y0 | (planted & eligible)
    value1 = value0 + np.where(planted & eligible, price[psku], 0.0)
    truth = [
        (
            user_ids[i],
            CAMPAIGN_SEGMENT,
            "treatment" if treated[i] else "holdout",
            f"{b:.6f}",
            int(y0[i]),
            int(y1[i]),
            f"{value0[i]:.2f}",
            f"{value1[i]:.2f}",
        )
        for i, b in zip(idx, bucket, strict=True)
    ]

    write = planted & treated
    rows = _Rows()
    pstore = np.full(n, s001)
    for t, et in ((tview, VIEW), (tcart, CART_ADD), (tord, ORDER)):
        rows.add(
            u=np.nonzero(write)[0],
            t=t[write],
            et=et,
            sku=psku[write],
            store=pstore[write],
            brand=pbrand[write],
            cat=pcat[write],
            qty=1,
            channel=pchan[write],
        )
    return rows.concat(), truth


# ----------------------------------------------------------------------------------------------
# formatting


class _Formatter:
    """Turns event columns into JSON lines exactly like ``json.dumps`` with the contract's key order."""

    def __init__(self, model: _Model, start: date, n_weeks: int) -> None:
        cat = model.catalog
        frags = [
            f'"sku_id": "{cat.sku_ids[i]}", "store_id": "{STORES[model.sku_store[i]]}", '
            f'"brand_id": "{BRANDS[model.sku_brand[i]]}", "category_id": '
            f'"{list(CATEGORIES)[model.sku_cat[i]]}", "price": {float(cat.sku_price[i])!r}'
            for i in range(len(cat.sku_ids))
        ]
        self.n_sku = len(frags)
        for s in STORES:
            for b in BRANDS:
                frags.append(
                    f'"sku_id": null, "store_id": "{s}", "brand_id": "{b}", "category_id": null, "price": null'
                )
        for c in CATEGORIES:
            frags.append(
                f'"sku_id": null, "store_id": null, "brand_id": null, "category_id": "{c}", "price": null'
            )
        self.frags = frags
        self.coupons = [
            f'"CP-{s}-{b}-W{w + 1:02d}"' for s in STORES for b in BRANDS for w in range(n_weeks)
        ] + ["null"]
        self.qty = ["null", "1", "2", "3"]
        self.types = [f'"{t}"' for t in EVENT_TYPES]
        self.channels = [f'"{c}"' for c in CHANNELS]
        self.day_text = [(start + timedelta(days=d)).isoformat() for d in range(n_weeks * 7 + 1)]
        self.hms = [f"{h:02d}:{m:02d}:{x:02d}" for h in range(24) for m in range(60) for x in range(60)]
        self.epoch0 = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp())

    def frag_index(self, ev: dict[str, np.ndarray]) -> np.ndarray:
        return np.where(
            ev["sku"] >= 0,
            ev["sku"],
            np.where(
                ev["store"] >= 0,
                self.n_sku + ev["store"] * _NB + ev["brand"],
                self.n_sku + _NS * _NB + ev["cat"],
            ),
        )

    def iso(self, t: np.ndarray) -> list[str]:
        """ISO-8601 UTC strings (``2026-09-01T10:22:31Z``) for seconds since the start day."""
        return [
            f"{self.day_text[d]}T{self.hms[x]}Z"
            for d, x in zip((t // _SECONDS_PER_DAY).tolist(), (t % _SECONDS_PER_DAY).tolist(), strict=True)
        ]

    def lines(
        self,
        ev: dict[str, np.ndarray],
        chunk: int,
        seq0: int,
        user_ids: list[str],
        time_fmt: np.ndarray,
        ms: np.ndarray,
    ) -> list[str]:
        """One JSON line per event; ids are ``e-<chunk:05d><seq:09d>``; time_fmt 1/2 = epoch s/ms."""
        frags, types, chans, coup, qtys = self.frags, self.types, self.channels, self.coupons, self.qty
        days, hms = self.day_text, self.hms
        head = f'{{"event_id": "e-{chunk:05d}'
        t = ev["t"]
        out = [
            f'{head}{s:09d}", "event_time": "{days[d]}T{hms[x]}Z", "user_id": "{user_ids[u]}", '
            f'"event_type": {types[et]}, {frags[fr]}, "quantity": {qtys[q]}, "channel": {chans[ch]}, '
            f'"coupon_id": {coup[cp]}}}'
            for s, d, x, u, et, fr, q, ch, cp in zip(
                range(seq0, seq0 + len(t)),
                (t // _SECONDS_PER_DAY).tolist(),
                (t % _SECONDS_PER_DAY).tolist(),
                ev["u"].tolist(),
                ev["et"].tolist(),
                self.frag_index(ev).tolist(),
                np.maximum(ev["qty"], 0).tolist(),
                ev["channel"].tolist(),
                ev["coupon"].tolist(),
                strict=True,
            )
        ]
        # A few lines carry epoch seconds / milliseconds instead of the ISO string (contract allows both).
        for i in np.nonzero(time_fmt)[0].tolist():
            sec = self.epoch0 + int(t[i])
            value = str(sec) if time_fmt[i] == 1 else str(sec * 1000 + int(ms[i]))
            iso = self.iso(t[i : i + 1])[0]
            out[i] = out[i].replace(f'"event_time": "{iso}"', f'"event_time": {value}', 1)
        return out


_UNKNOWN_TYPES = ("share", "live_like", "page_leave")
_BAD_PRICES = ("N/A", "12.9元", "abc", "1O9.0", "¥")
_GARBAGE = ("<html><body>502 Bad Gateway</body></html>", "{'event_id': 'e-1', 'user_id': 'u1'}")


def _bad_lines(
    rng: np.random.Generator,
    counts: np.ndarray,
    lines: list[str],
    ev: dict[str, np.ndarray],
    fmt: _Formatter,
    next_id: Callable[[], str],
) -> list[tuple[int, str, str]]:
    """(insert position, kind, line) for the bad records of one file; positions index ``lines``."""
    n = len(lines)
    out: list[tuple[int, str, str]] = []
    has_price = np.nonzero(ev["sku"] >= 0)[0]
    for kind, count in zip(BAD_KINDS, counts.tolist(), strict=True):
        for _ in range(count):
            i = int(rng.integers(0, n))
            pos = int(rng.integers(0, n))
            if kind == "malformed_json":
                line = lines[i]
                if rng.random() < 0.7:
                    line = line[: int(rng.integers(10, len(line) - 1))]
                else:
                    line = _GARBAGE[int(rng.integers(0, len(_GARBAGE)))]
            elif kind == "duplicate_exact":
                pos = int(rng.integers(i, n))
                line = lines[i]
            else:
                rec = json.loads(lines[i])
                if kind == "duplicate_conflict":
                    t = int(ev["t"][i])
                    room = _SECONDS_PER_DAY - 1 - t % _SECONDS_PER_DAY
                    if room == 0 and (ev["t"] % _SECONDS_PER_DAY < _SECONDS_PER_DAY - 1).any():
                        # the copy must be strictly later on the same day: take another original
                        i = int(rng.choice(np.nonzero(ev["t"] % _SECONDS_PER_DAY < _SECONDS_PER_DAY - 1)[0]))
                        rec, t = json.loads(lines[i]), int(ev["t"][i])
                        room = _SECONDS_PER_DAY - 1 - t % _SECONDS_PER_DAY
                    pos = int(rng.integers(i, n))
                    t2 = t + min(int(rng.integers(1, 30)), room)
                    rec["event_time"] = fmt.iso(np.array([t2]))[0]
                    rec["channel"] = CHANNELS[(CHANNELS.index(rec["channel"]) + 1) % len(CHANNELS)]
                elif kind == "unknown_event_type":
                    rec["event_id"] = next_id()
                    rec["event_type"] = _UNKNOWN_TYPES[int(rng.integers(0, len(_UNKNOWN_TYPES)))]
                elif kind == "missing_user_id":
                    rec["event_id"] = next_id()
                    if rng.random() < 0.5:
                        del rec["user_id"]
                    else:
                        rec["user_id"] = None
                elif kind == "future_timestamp":
                    rec["event_id"] = next_id()
                    iso = fmt.iso(ev["t"][i : i + 1])[0].replace("-02-29T", "-02-28T")
                    rec["event_time"] = "2099" + iso[4:]
                elif kind == "bad_price":
                    if len(has_price):
                        rec = json.loads(lines[int(has_price[int(rng.integers(0, len(has_price)))])])
                    rec["event_id"] = next_id()
                    rec["price"] = _BAD_PRICES[int(rng.integers(0, len(_BAD_PRICES)))]
                line = json.dumps(rec, ensure_ascii=False)
            out.append((pos, kind, line))
    return out


# ----------------------------------------------------------------------------------------------
# identities


_PHONE_PREFIXES = (
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "153", "155",
    "156", "157", "158", "159", "176", "177", "180", "181", "182", "185", "186", "187", "188", "189",
)  # fmt: skip
_SURNAMES = ("li", "wang", "zhang", "liu", "chen", "yang", "zhao", "huang", "zhou", "wu", "xu", "sun")
_GIVEN = ("wei", "fang", "na", "min", "jing", "lei", "yang", "jie", "tao", "ming", "xiu", "hua", "lin")
_DOMAINS = ("qq.com", "163.com", "126.com", "gmail.com", "outlook.com", "sina.com", "foxmail.com")


def _luhn(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return str((10 - total % 10) % 10)


def _uuid(hex32: str) -> str:
    return f"{hex32[:8]}-{hex32[8:12]}-{hex32[12:16]}-{hex32[16:20]}-{hex32[20:]}"


def _identities(
    rng: np.random.Generator, user_nums: np.ndarray, platform: np.ndarray, seed: int
) -> tuple[list[str], dict[str, int], int]:
    """Identity lines for one chunk, the count per id type, and the number of users with no id."""
    n = len(user_nums)
    r = rng.random((n, 20)).tolist()
    hexes = rng.bytes(n * 3 * 16).hex()
    imei_body = rng.integers(10**13, 10**14, (n, 3)).tolist()  # 14 digits + a Luhn check digit
    prefixes = rng.integers(0, len(_PHONE_PREFIXES), n).tolist()
    names = rng.integers(0, len(_SURNAMES) * len(_GIVEN) * len(_DOMAINS), n).tolist()
    # 8 phone digits: a bijection of the user number mod 1e8 -> unique phones up to 1e8 users.
    salt = (seed * 2654435761) % 10**8
    phone_tail = ((user_nums.astype(np.int64) * 73939133 + salt) % 10**8).tolist()
    counts = {k: 0 for k in ("oaid", "idfa", "imei", "phone", "email")}
    lines: list[str] = []
    no_ids = 0

    def space(value: str, p: float, roll: float) -> str:
        if roll < p / 2:
            return " " + value
        if roll < p:
            return value + "  "
        return value

    for i in range(n):
        ri = r[i]
        uid = f"u{user_nums[i]:07d}"
        ids: list[tuple[str, str]] = []
        if ri[0] >= 0.03:  # 3% of users leave no identifier at all
            n_dev = 1 + (ri[1] < 0.15) + (ri[2] < 0.03)
            for d in range(n_dev):
                h = hexes[(i * 3 + d) * 32 : (i * 3 + d + 1) * 32]
                roll = ri[3 + d]
                if platform[i] == 0:
                    if ri[6 + d] < 0.9:
                        v = _uuid(h)
                        v = v.upper() if roll < 0.2 else v
                        ids.append(("oaid", space(v, 0.1, ri[9 + d])))
                    if ri[12 + d] < 0.3:
                        digits = str(imei_body[i][d])
                        ids.append(("imei", space(digits + _luhn(digits), 0.1, ri[9 + d])))
                elif ri[6 + d] < 0.85:
                    v = _uuid(h).upper()
                    v = v.lower() if roll < 0.2 else v
                    ids.append(("idfa", space(v, 0.1, ri[9 + d])))
            if ri[15] < 0.7:
                p = _PHONE_PREFIXES[prefixes[i]]
                tail = f"{phone_tail[i]:08d}"
                roll = ri[16]
                if roll < 0.4:
                    phone = p + tail
                elif roll < 0.6:
                    phone = f"{p} {tail[:4]} {tail[4:]}"
                elif roll < 0.8:
                    phone = f"+86 {p}-{tail[:4]}-{tail[4:]}"
                elif roll < 0.9:
                    phone = f"+86{p}{tail}"
                else:
                    phone = f" {p}{tail} "
                ids.append(("phone", phone))
            if ri[17] < 0.5:
                k = names[i]
                sur = _SURNAMES[k % len(_SURNAMES)]
                given = _GIVEN[(k // len(_SURNAMES)) % len(_GIVEN)]
                domain = _DOMAINS[k // (len(_SURNAMES) * len(_GIVEN))]
                email = f"{sur}.{given}{user_nums[i]}@{domain}"
                roll = ri[18]
                if roll < 0.25:
                    email = email[0].upper() + email[1:]
                elif roll < 0.35:
                    email = email.upper()
                elif roll < 0.45:
                    local, dom = email.split("@")
                    email = f"{local}@{dom.upper()}"
                ids.append(("email", space(email, 0.15, ri[19])))
        if not ids:
            no_ids += 1
        for id_type, value in ids:
            counts[id_type] += 1
            lines.append(f'{{"user_id": "{uid}", "id_type": "{id_type}", "id_value": "{value}"}}')
    return lines, counts, no_ids


# ----------------------------------------------------------------------------------------------
# public API


def default_chunk_users(days: int) -> int:
    """About 600k user-days (~450k events) per chunk: memory is bounded by the chunk, not the total.

    Never below 5000 users, so long histories do not explode into tiny files (one file per date and
    chunk): 365 days x 5000 users is ~1.4M events in memory at once (~0.6 GB).
    """
    return int(min(20_000, max(5_000, 600_000 // max(days, 1))))


def _n_weeks(days: int) -> int:
    return (days + 6) // 7


def _stream(seed: int, chunk: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, chunk, stream]))


@lru_cache(maxsize=32)
def expected_events_per_user_day(days: int = DEFAULT_DAYS) -> float:
    """Valid events per user per day, measured on a fixed pilot of 5000 users (about 0.7 at 30 days)."""
    model = _Model(build_catalog())
    rng = _stream(987654321, 0, 0)
    users = _draw_users(rng, 5000, days)
    ev = _simulate(rng, users, days, model, _n_weeks(days))
    return len(ev["u"]) / (5000 * days)


def users_for_events(events: int, days: int = DEFAULT_DAYS) -> int:
    """Number of users that gives about ``events`` valid events over ``days`` days."""
    return max(1, round(events / (days * expected_events_per_user_day(days))))


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


_OWNED = ("events", "identities", "suppression", "truth", "catalog.json")


def _prepare_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise DmpError(f"--out {out}: expected a folder, found a file")
    present = [name for name in _OWNED if (out / name).exists()]
    if present and not (out / "catalog.json").exists():
        raise DmpError(
            f"--out {out}: already holds {', '.join(present)} but no catalog.json, so it does not look like "
            "a previous `dmp generate` output; refusing to overwrite it (choose an empty folder)"
        )
    for name in present:  # a previous generator output: replace it so stale files never linger
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    for sub in ("events", "identities", "suppression", "truth"):
        (out / sub).mkdir(parents=True, exist_ok=True)


_USERS_HEADER = (
    "user_id", "persona", "platform", "price_level", "join_date", "churn_date", "active_share",
    "views_per_active_day", "cart_rate", "order_rate", "coupon_sensitivity", "top_category_id",
    "top_brand_id", "n_events", "n_orders", "opted_out",
)  # fmt: skip


@dataclass(frozen=True)
class _ChunkJob:
    out: str
    chunk: int
    first: int  # first and last user number (inclusive)
    last: int
    days: int
    seed: int
    start: date
    bad_rate: float
    run_day: int  # -1: no campaign
    planted_prob: float
    epoch_share: float


@dataclass
class _ChunkResult:
    users_csv: str
    opt_out: str
    identities: str
    truth_csv: str
    truth_sums: np.ndarray  # _TRUTH_SUMS, summed over the chunk's eligible users
    events_by_type: dict[str, int]
    bad_counts: dict[str, int]
    id_counts: dict[str, int]
    personas: dict[str, int]
    no_ids: int
    opted_out: int
    event_files: int
    lines: int
    epoch_lines: int


_TRUTH_HEADER = ("user_id", "segment", "group", "bucket", "y0", "y1", "value0", "value1")
# n, n_treatment, sum y0, sum y1, sum value0, sum value1, realised conversions: treatment, holdout
_TRUTH_SUMS = ("n", "n_treatment", "y0", "y1", "value0", "value1", "conv_treatment", "conv_holdout")


def _truth_sums(rows: list[tuple]) -> np.ndarray:
    if not rows:
        return np.zeros(len(_TRUTH_SUMS))
    treat = np.array([r[2] == "treatment" for r in rows])
    y0 = np.array([r[4] for r in rows], dtype=float)
    y1 = np.array([r[5] for r in rows], dtype=float)
    v0 = np.array([float(r[6]) for r in rows])
    v1 = np.array([float(r[7]) for r in rows])
    return np.array(
        [len(rows), treat.sum(), y0.sum(), y1.sum(), v0.sum(), v1.sum(), y1[treat].sum(), y0[~treat].sum()]
    )


@lru_cache(maxsize=4)
def _tables(start: date, n_weeks: int) -> tuple[_Model, _Formatter]:
    model = _Model(build_catalog())
    return model, _Formatter(model, start, n_weeks)


def _run_chunk(job: _ChunkJob) -> _ChunkResult:
    """Simulate one chunk of users over all days and write its event files (one per date)."""
    days, chunk, start = job.days, job.chunk, job.start
    model, fmt = _tables(start, _n_weeks(days))
    out = Path(job.out)
    nums = np.arange(job.first, job.last + 1)
    user_ids = [f"u{x:07d}" for x in nums.tolist()]
    rng = _stream(job.seed, chunk, 0)
    u = _draw_users(rng, len(nums), days)
    ev = _simulate(rng, u, days, model, _n_weeks(days))
    truth: list[tuple] = []
    if job.run_day >= 0:
        planted, truth = _plant_campaign(
            _stream(job.seed, chunk, 1), u, ev, model, job.run_day, job.planted_prob, user_ids
        )
        ev = {k: np.concatenate([ev[k], planted[k]]) for k in ev}
    order = np.lexsort((_RANK[ev["et"]], ev["t"]))
    ev = {k: v[order] for k, v in ev.items()}

    # per-user truth and opt-outs
    n_ev = np.bincount(ev["u"], minlength=len(nums))
    n_ord = np.bincount(ev["u"][ev["et"] == ORDER], minlength=len(nums))
    opt = _stream(job.seed, chunk, 3).random(len(nums)) < 0.01
    buf = io.StringIO()
    users_csv = csv.writer(buf, lineterminator="\n")
    personas = dict.fromkeys((p.name for p in PERSONAS), 0)
    cats = list(CATEGORIES)
    top_cat = np.argmax(u.cat_w, axis=1).tolist()
    top_brand = np.argmax(u.brand_w, axis=1).tolist()
    for i, uid in enumerate(user_ids):
        persona = PERSONAS[u.persona[i]].name
        personas[persona] += 1
        churn = "" if u.churn_day[i] >= days else (start + timedelta(days=int(u.churn_day[i]))).isoformat()
        users_csv.writerow(
            [
                uid, persona, "ios" if u.platform[i] else "android", _PRICE_LEVELS[u.price_level[i]],
                (start + timedelta(days=int(u.join_day[i]))).isoformat(), churn,
                f"{u.p_active[i]:.4f}", f"{u.rate[i]:.4f}", f"{u.p_cart[i]:.4f}", f"{u.p_order[i]:.4f}",
                f"{u.coupon_sens[i]:.4f}", cats[top_cat[i]], BRANDS[top_brand[i]], int(n_ev[i]), int(n_ord[i]),
                int(opt[i]),
            ]
        )  # fmt: skip
    id_lines, id_counts, no_ids = _identities(_stream(job.seed, chunk, 4), nums, u.platform, job.seed)

    # events, one file per (date, chunk); bad lines are extra lines inserted among the valid ones
    events_by_type = dict.fromkeys(EVENT_TYPES, 0)
    for et, c in zip(*np.unique(ev["et"], return_counts=True), strict=True):
        events_by_type[EVENT_TYPES[et]] += int(c)
    bad_counts = dict.fromkeys(BAD_KINDS, 0)
    seq = bad_seq = event_files = lines_total = epoch_lines = 0
    brng = _stream(job.seed, chunk, 2)
    trng = _stream(job.seed, chunk, 5)
    bounds = np.searchsorted(ev["t"] // _SECONDS_PER_DAY, np.arange(days + 1))
    forced = chunk == 0 and job.bad_rate > 0  # every kind at least once, even in tiny datasets

    def next_id() -> str:
        nonlocal bad_seq
        bad_seq += 1
        return f"e-x{chunk:05d}{bad_seq:08d}"

    for d in range(days):
        lo, hi = int(bounds[d]), int(bounds[d + 1])
        if hi == lo:
            continue
        dev = {k: v[lo:hi] for k, v in ev.items()}
        n = hi - lo
        roll = trng.random(n)
        time_fmt = np.where(roll < job.epoch_share / 2, 1, np.where(roll < job.epoch_share, 2, 0))
        ms = trng.integers(0, 1000, n)
        epoch_lines += int((time_fmt > 0).sum())
        lines = fmt.lines(dev, chunk, seq, user_ids, time_fmt, ms)
        seq += n
        if job.bad_rate > 0:
            counts_bad = brng.multinomial(brng.binomial(n, job.bad_rate), _BAD_SHARES)
            if forced:
                counts_bad = counts_bad + 1
                forced = False
            bad = _bad_lines(brng, counts_bad, lines, dev, fmt, next_id)
            for _, kind, _ in bad:
                bad_counts[kind] += 1
            keys = np.concatenate(
                [np.arange(n) * 2, np.array([2 * p + 1 for p, _, _ in bad], dtype=np.int64)]
            )
            merged = lines + [line for _, _, line in bad]
            lines = [merged[i] for i in np.argsort(keys, kind="stable")]
        folder = out / "events" / f"event_date={(start + timedelta(days=d)).isoformat()}"
        folder.mkdir(exist_ok=True)
        with open(folder / f"part-{chunk:05d}.jsonl", "wb") as f:
            f.write(("\n".join(lines) + "\n").encode("utf-8"))
        event_files += 1
        lines_total += len(lines)

    return _ChunkResult(
        users_csv=buf.getvalue(),
        opt_out="".join(f"{user_ids[i]}\n" for i in np.nonzero(opt)[0]),
        identities="".join(line + "\n" for line in id_lines),
        truth_csv="".join(",".join(map(str, row)) + "\n" for row in truth),
        truth_sums=_truth_sums(truth),
        events_by_type=events_by_type,
        bad_counts=bad_counts,
        id_counts=id_counts,
        personas=personas,
        no_ids=no_ids,
        opted_out=int(opt.sum()),
        event_files=event_files,
        lines=lines_total,
        epoch_lines=epoch_lines,
    )


def generate(
    out: Path | str,
    users: int,
    days: int = DEFAULT_DAYS,
    seed: int = 0,
    start: date = DEFAULT_START,
    *,
    bad_rate: float = DEFAULT_BAD_RATE,
    campaign: bool = True,
    campaign_date: date | None = None,
    planted_prob: float = DEFAULT_PLANTED_PROB,
    epoch_share: float = DEFAULT_EPOCH_SHARE,
    chunk_users: int | None = None,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> GenerateSummary:
    """Write a demo dataset to ``out`` (see the module docstring) and return what was written."""
    out = Path(out)
    if users < 1:
        raise DmpError(f"--users: expected a positive number of users, got {users}")
    if days < 1:
        raise DmpError(f"--days: expected a positive number of days, got {days}")
    if not 0 <= bad_rate < 0.5:
        raise DmpError(f"--bad-rate: expected a share in [0, 0.5), got {bad_rate}")
    if not 0 <= planted_prob <= 1:
        raise DmpError(f"planted_prob: expected a probability in [0, 1], got {planted_prob}")
    if chunk_users is not None and chunk_users < 1:
        raise DmpError(f"--chunk-users: expected a positive number of users, got {chunk_users}")
    if workers < 1:
        raise DmpError(f"--workers: expected at least 1 process, got {workers}")
    run_date = campaign_run_date(start, days, campaign_date) if campaign else None
    run_day = (run_date - start).days if run_date else -1
    chunk_users = chunk_users or default_chunk_users(days)
    catalog = build_catalog()
    _prepare_out(out)
    dates = [start + timedelta(days=d) for d in range(days)]

    events_by_type = dict.fromkeys(EVENT_TYPES, 0)
    bad_counts = dict.fromkeys(BAD_KINDS, 0)
    id_counts = dict.fromkeys(("oaid", "idfa", "imei", "phone", "email"), 0)
    personas = dict.fromkeys((p.name for p in PERSONAS), 0)
    event_files = lines_total = epoch_lines = no_ids = opted_out = 0
    truth_sums = np.zeros(len(_TRUTH_SUMS))
    n_chunks = math.ceil(users / chunk_users)
    jobs = [
        _ChunkJob(
            out=str(out), chunk=c, first=c * chunk_users + 1, last=min((c + 1) * chunk_users, users), days=days,
            seed=seed, start=start, bad_rate=bad_rate, run_day=run_day, planted_prob=planted_prob,
            epoch_share=epoch_share,
        )
        for c in range(n_chunks)
    ]  # fmt: skip

    with (
        open(out / "identities" / "identities.jsonl", "wb") as ids_f,
        open(out / "suppression" / "opt_out.csv", "wb") as opt_f,
        open(out / "truth" / "users.csv", "wb") as users_f,
        open(out / "truth" / "campaign_users.csv", "wb") as truth_f,
    ):
        truth_f.write((",".join(_TRUTH_HEADER) + "\n").encode())
        opt_f.write(b"user_id\n")
        users_f.write((",".join(_USERS_HEADER) + "\n").encode())
        if workers > 1 and n_chunks > 1:
            import multiprocessing

            # spawn, not fork: the parent may hold a JVM (Spark) and threads
            pool = multiprocessing.get_context("spawn").Pool(min(workers, n_chunks))
            results = pool.imap(_run_chunk, jobs)  # ordered: the shared files stay deterministic
        else:
            pool = None
            results = map(_run_chunk, jobs)
        try:
            for done, res in enumerate(results, start=1):
                users_f.write(res.users_csv.encode())
                opt_f.write(res.opt_out.encode())
                ids_f.write(res.identities.encode())
                truth_f.write(res.truth_csv.encode())
                truth_sums += res.truth_sums
                for total, part in (
                    (events_by_type, res.events_by_type), (bad_counts, res.bad_counts), (id_counts, res.id_counts),
                    (personas, res.personas),
                ):  # fmt: skip
                    for k, v in part.items():
                        total[k] += v
                no_ids += res.no_ids
                opted_out += res.opted_out
                event_files += res.event_files
                lines_total += res.lines
                epoch_lines += res.epoch_lines
                if progress:
                    progress(done, n_chunks)
        finally:
            if pool is not None:
                pool.terminate()

    campaign_json = None
    if campaign:
        assert run_date is not None
        campaign_json = _write_campaign_truth(out, truth_sums, run_date, planted_prob)
    else:
        (out / "truth" / "campaign_users.csv").unlink()
    events_total = sum(events_by_type.values())
    bad_total = sum(bad_counts.values())
    (out / "truth" / "bad_records.json").write_text(
        json.dumps({"total": bad_total, "by_kind": bad_counts, "bad_rate": bad_rate}, indent=2) + "\n"
    )
    summary = GenerateSummary(
        out=str(out),
        users=users,
        days=days,
        seed=seed,
        start=start.isoformat(),
        end=dates[-1].isoformat(),
        events_by_type=events_by_type,
        events_total=events_total,
        bad_records=bad_counts,
        bad_total=bad_total,
        lines_total=lines_total,
        epoch_time_lines=epoch_lines,
        event_files=event_files,
        files={
            "catalog": str(out / "catalog.json"),
            "events": str(out / "events"),
            "identities": str(out / "identities" / "identities.jsonl"),
            "opt_out": str(out / "suppression" / "opt_out.csv"),
            "users": str(out / "truth" / "users.csv"),
            "bad_records": str(out / "truth" / "bad_records.json"),
            "campaigns": str(out / "truth" / "campaigns.json") if campaign else "",
            "campaign_users": str(out / "truth" / "campaign_users.csv") if campaign else "",
            "summary": str(out / "truth" / "summary.json"),
        },
        identities_by_type=id_counts,
        users_without_ids=no_ids,
        opted_out=opted_out,
        users_by_persona=personas,
        chunk_users=chunk_users,
        campaign=campaign_json,
        events_per_user_day=round(events_total / (users * days), 4),
    )
    _write_catalog(out, catalog, days, summary)
    # Paths relative to the output folder: the file must not depend on where it was written.
    doc = summary.to_json()
    doc["out"] = "."
    doc["files"] = {k: str(Path(v).relative_to(out)) if v else "" for k, v in summary.files.items()}
    (out / "truth" / "summary.json").write_text(json.dumps(doc, indent=2) + "\n")
    return summary


def _write_campaign_truth(out: Path, sums: np.ndarray, run_date: date, planted_prob: float) -> dict:
    t = dict(zip(_TRUTH_SUMS, sums.tolist(), strict=True))
    n, n_treat = int(t["n"]), int(t["n_treatment"])
    n_hold = n - n_treat

    def ratio(x: float, d: int) -> float | None:
        return round(x / d, 6) if d else None

    rate_t, rate_h = ratio(t["conv_treatment"], n_treat), ratio(t["conv_holdout"], n_hold)
    info = {
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
        "rate_y0": ratio(t["y0"], n),
        "rate_y1": ratio(t["y1"], n),
        "true_uplift_abs": ratio(t["y1"] - t["y0"], n),
        "true_uplift_value": ratio(t["value1"] - t["value0"], n),
        "realised_rate_treatment": rate_t,
        "realised_rate_holdout": rate_h,
        "realised_uplift_abs": round(rate_t - rate_h, 6)
        if rate_t is not None and rate_h is not None
        else None,
    }
    (out / "truth" / "campaigns.json").write_text(json.dumps([info], indent=2) + "\n")
    return info


def _write_catalog(out: Path, catalog: Catalog, days: int, summary: GenerateSummary) -> None:
    doc = catalog.to_json()
    doc["personas"] = [
        {
            "name": p.name,
            "share": p.share,
            "description": p.description,
            "category_weights": dict(zip(CATEGORIES, p.categories, strict=True)),
            "brand_weights": dict(zip(BRANDS, p.brands, strict=True)),
        }
        for p in PERSONAS
    ]
    doc["lookalike_hint"] = LOOKALIKE_HINT
    doc["channels"] = list(CHANNELS)
    doc["event_types"] = list(EVENT_TYPES)
    doc["coupon_ids"] = "CP-<store_id>-<brand_id>-W<week of the generated period, 01..>"
    doc["events_per_user_day"] = {
        "expected": round(expected_events_per_user_day(days), 4),
        "observed": summary.events_per_user_day,
    }
    doc["generated"] = {
        "start": summary.start,
        "end": summary.end,
        "users": summary.users,
        "seed": summary.seed,
    }
    (out / "catalog.json").write_text(json.dumps(doc, indent=2) + "\n")
