"""Event columns -> JSON lines, written exactly as ``json.dumps`` would with the contract's key order.

Formatting is the generator's hot loop: every field is a precomputed text fragment (SKU with its
store, brand, category and price; coupon ids; ISO dates and times of day) looked up by index, so a
line is one f-string. About 2% of the valid lines carry ``event_time`` as epoch seconds or
milliseconds instead (the contract allows both).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np

from dmp.contracts.vocab import EVENT_CHANNELS, EVENT_TYPES
from dmp.demo.catalog import BRANDS, CATEGORIES, STORES
from dmp.demo.model import N_BRANDS, N_STORES, CatalogModel
from dmp.demo.sampling import SECONDS_PER_DAY
from dmp.demo.simulate import Events

# time_fmt codes of EventFormatter.lines
ISO_TIME, EPOCH_SECONDS, EPOCH_MILLIS = 0, 1, 2


class EventFormatter:
    """Turns event columns into JSON lines exactly like ``json.dumps`` with the contract's key order."""

    def __init__(self, model: CatalogModel, start: date, weeks: int) -> None:
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
            f'"CP-{s}-{b}-W{w + 1:02d}"' for s in STORES for b in BRANDS for w in range(weeks)
        ] + ["null"]
        self.qty = ["null", "1", "2", "3"]
        self.types = [f'"{t}"' for t in EVENT_TYPES]
        self.channels = [f'"{c}"' for c in EVENT_CHANNELS]
        self.day_text = [(start + timedelta(days=d)).isoformat() for d in range(weeks * 7 + 1)]
        self.hms = [f"{h:02d}:{m:02d}:{x:02d}" for h in range(24) for m in range(60) for x in range(60)]
        self.epoch0 = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp())

    def frag_index(self, ev: Events) -> np.ndarray:
        """Which fragment describes each event: its SKU, else its (store, brand), else its category."""
        return np.where(
            ev["sku"] >= 0,
            ev["sku"],
            np.where(
                ev["store"] >= 0,
                self.n_sku + ev["store"] * N_BRANDS + ev["brand"],
                self.n_sku + N_STORES * N_BRANDS + ev["cat"],
            ),
        )

    def iso(self, t: np.ndarray) -> list[str]:
        """ISO-8601 UTC strings (``2026-09-01T10:22:31Z``) for seconds since the start day."""
        return [
            f"{self.day_text[d]}T{self.hms[x]}Z"
            for d, x in zip((t // SECONDS_PER_DAY).tolist(), (t % SECONDS_PER_DAY).tolist(), strict=True)
        ]

    def lines(
        self,
        ev: Events,
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
                (t // SECONDS_PER_DAY).tolist(),
                (t % SECONDS_PER_DAY).tolist(),
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
            value = str(sec) if time_fmt[i] == EPOCH_SECONDS else str(sec * 1000 + int(ms[i]))
            iso = self.iso(t[i : i + 1])[0]
            out[i] = out[i].replace(f'"event_time": "{iso}"', f'"event_time": {value}', 1)
        return out
