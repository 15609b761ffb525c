"""The demo catalogue (contract in the brief): categories, our stores and brands, competitors', SKUs.

Our stores sell our brands, competitor stores sell competitor brands. Every store sells every
category of the brands it carries, so a (store, brand, category) *cell* exists exactly when the
store carries the brand and the brand makes the category. Each cell has ``SKUS_PER_CELL`` SKUs
with a fixed price (log-normal around the category's median) and a Zipf popularity.

The SKU list is built from a fixed seed, independent of the generator's ``--seed``: every demo
dataset shares the same product universe, only the users and their behaviour change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CATEGORIES: dict[str, str] = {
    "C01": "beauty",
    "C02": "apparel",
    "C03": "electronics",
    "C04": "home",
    "C05": "food",
    "C06": "sports",
}
# Median list price per category (CNY) and spread (sigma of log price).
CATEGORY_PRICE: dict[str, tuple[float, float]] = {
    "C01": (150.0, 0.55),
    "C02": (220.0, 0.6),
    "C03": (900.0, 0.8),
    "C04": (120.0, 0.6),
    "C05": (45.0, 0.5),
    "C06": (260.0, 0.6),
}

OUR_STORES: tuple[str, ...] = ("S001", "S002")
COMPETITOR_STORES: tuple[str, ...] = ("S101", "S102", "S103")
STORES: tuple[str, ...] = OUR_STORES + COMPETITOR_STORES
OUR_BRANDS: tuple[str, ...] = ("B001", "B002")
COMPETITOR_BRANDS: tuple[str, ...] = ("B101", "B102", "B103", "B104")
BRANDS: tuple[str, ...] = OUR_BRANDS + COMPETITOR_BRANDS

STORE_NAMES: dict[str, str] = {
    "S001": "our flagship store",
    "S002": "our outlet store",
    "S101": "competitor A flagship",
    "S102": "competitor B flagship",
    "S103": "multi-brand reseller",
}
BRAND_NAMES: dict[str, str] = {
    "B001": "Lumiere (ours: beauty, apparel, home)",
    "B002": "Voltix (ours: electronics, home, food, sports)",
    "B101": "Rivale (beauty, apparel)",
    "B102": "Gearon (electronics, sports)",
    "B103": "Casa (home, food)",
    "B104": "Omni (beauty, electronics, food)",
}
BRAND_CATEGORIES: dict[str, tuple[str, ...]] = {
    "B001": ("C01", "C02", "C04"),
    "B002": ("C03", "C04", "C05", "C06"),
    "B101": ("C01", "C02"),
    "B102": ("C03", "C06"),
    "B103": ("C04", "C05"),
    "B104": ("C01", "C03", "C05"),
}
# Where a brand's traffic goes: store -> share of the brand's views (sums to 1 per brand).
BRAND_STORES: dict[str, dict[str, float]] = {
    "B001": {"S001": 0.75, "S002": 0.25},
    "B002": {"S001": 0.7, "S002": 0.3},
    "B101": {"S101": 0.6, "S103": 0.4},
    "B102": {"S101": 1.0},
    "B103": {"S102": 1.0},
    "B104": {"S102": 0.5, "S103": 0.5},
}
# Brand price positioning (multiplies the category median).
BRAND_PRICE_FACTOR: dict[str, float] = {
    "B001": 1.25,
    "B002": 1.0,
    "B101": 1.1,
    "B102": 0.9,
    "B103": 0.8,
    "B104": 0.95,
}

SKUS_PER_CELL = 16
CATALOG_SEED = 20260901


@dataclass(frozen=True)
class Catalog:
    """SKU arrays indexed by sku number (``sku_ids[i]`` is ``K{i+1:05d}``)."""

    cells: tuple[tuple[str, str, str], ...]  # (store, brand, category) per cell
    sku_ids: tuple[str, ...]
    sku_cell: np.ndarray  # int, cell index per sku
    sku_price: np.ndarray  # float, list price per sku
    sku_popularity: np.ndarray  # float, Zipf weight within its cell

    def to_json(self) -> dict:
        return {
            "categories": [{"category_id": c, "name": n} for c, n in CATEGORIES.items()],
            "stores": [
                {
                    "store_id": s,
                    "name": STORE_NAMES[s],
                    "owner": "ours" if s in OUR_STORES else "competitor",
                    "brand_ids": sorted(b for b, st in BRAND_STORES.items() if s in st),
                }
                for s in STORES
            ],
            "brands": [
                {
                    "brand_id": b,
                    "name": BRAND_NAMES[b],
                    "owner": "ours" if b in OUR_BRANDS else "competitor",
                    "category_ids": list(BRAND_CATEGORIES[b]),
                    "store_share": BRAND_STORES[b],
                }
                for b in BRANDS
            ],
            "skus": [
                {
                    "sku_id": self.sku_ids[i],
                    "store_id": self.cells[self.sku_cell[i]][0],
                    "brand_id": self.cells[self.sku_cell[i]][1],
                    "category_id": self.cells[self.sku_cell[i]][2],
                    "price": float(self.sku_price[i]),
                }
                for i in range(len(self.sku_ids))
            ],
        }


def build_catalog() -> Catalog:
    cells = tuple(
        (store, brand, cat)
        for store in STORES
        for brand in BRANDS
        if store in BRAND_STORES[brand]
        for cat in BRAND_CATEGORIES[brand]
    )
    rng = np.random.default_rng(CATALOG_SEED)
    n = len(cells) * SKUS_PER_CELL
    sku_cell = np.repeat(np.arange(len(cells)), SKUS_PER_CELL)
    median = np.array([CATEGORY_PRICE[c][0] * BRAND_PRICE_FACTOR[b] for _, b, c in cells])[sku_cell]
    sigma = np.array([CATEGORY_PRICE[c][1] for _, _, c in cells])[sku_cell]
    raw = median * np.exp(sigma * rng.standard_normal(n))
    # Shop prices end in .0 or .9 (129.0, 128.9); never below 1.9.
    price = np.maximum(np.round(raw), 2.0) - np.where(rng.random(n) < 0.5, 0.1, 0.0)
    price = np.round(price, 1)
    # Popularity: Zipf over a random rank inside each cell (best sellers are not always the cheapest).
    ranks = np.concatenate([rng.permutation(SKUS_PER_CELL) for _ in cells])
    popularity = 1.0 / (ranks + 1.0) ** 0.9
    sku_ids = tuple(f"K{i + 1:05d}" for i in range(n))
    return Catalog(cells, sku_ids, sku_cell, price, popularity)
