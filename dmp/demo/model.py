"""Integer lookup tables over the demo catalogue, so the simulation can stay vectorised.

Stores, brands and categories become indexes into ``STORES``, ``BRANDS`` and ``CATEGORIES``;
:class:`CatalogModel` maps (store, brand, category) to a cell and draws SKUs within a cell with
the user's price preference.
"""

from __future__ import annotations

import numpy as np

from dmp.demo.catalog import BRAND_CATEGORIES, BRAND_STORES, BRANDS, CATEGORIES, STORES, Catalog
from dmp.demo.sampling import pick

N_STORES, N_BRANDS, N_CATEGORIES = len(STORES), len(BRANDS), len(CATEGORIES)
CATEGORY_INDEX = {c: i for i, c in enumerate(CATEGORIES)}
BRAND_INDEX = {b: i for i, b in enumerate(BRANDS)}
STORE_INDEX = {s: i for i, s in enumerate(STORES)}


def _brand_categories() -> np.ndarray:
    """brand x category: 1 where the brand makes the category."""
    table = np.zeros((N_BRANDS, N_CATEGORIES))
    for brand, cats in BRAND_CATEGORIES.items():
        for cat in cats:
            table[BRAND_INDEX[brand], CATEGORY_INDEX[cat]] = 1.0
    return table


def _brand_stores() -> np.ndarray:
    """brand x store: the share of the brand's traffic each store gets."""
    table = np.zeros((N_BRANDS, N_STORES))
    for brand, shares in BRAND_STORES.items():
        for store, weight in shares.items():
            table[BRAND_INDEX[brand], STORE_INDEX[store]] = weight
    return table


BRAND_CAT = _brand_categories()
BRAND_STORE = _brand_stores()

# Price preference: SKU weight within a cell multiplied by (price / cell median) ** exponent.
PRICE_LEVELS = ("low", "mid", "high")
_PRICE_EXPONENT = np.array([-1.5, 0.0, 1.2])


class CatalogModel:
    """Lookup tables derived from the catalogue."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.cell_of = np.full((N_STORES, N_BRANDS, N_CATEGORIES), -1, dtype=np.int64)
        for i, (s, b, c) in enumerate(catalog.cells):
            self.cell_of[STORE_INDEX[s], BRAND_INDEX[b], CATEGORY_INDEX[c]] = i
        n_cells = len(catalog.cells)
        per_cell = len(catalog.sku_ids) // n_cells
        self.per_cell = per_cell
        price = catalog.sku_price.reshape(n_cells, per_cell)
        pop = catalog.sku_popularity.reshape(n_cells, per_cell)
        rel = price / np.median(price, axis=1, keepdims=True)
        self.sku_w = np.stack([pop * rel**e for e in _PRICE_EXPONENT])  # level x cell x k
        self.sku_store = np.array([STORE_INDEX[catalog.cells[c][0]] for c in catalog.sku_cell])
        self.sku_brand = np.array([BRAND_INDEX[catalog.cells[c][1]] for c in catalog.sku_cell])
        self.sku_cat = np.array([CATEGORY_INDEX[catalog.cells[c][2]] for c in catalog.sku_cell])

    def pick_sku(self, rng: np.random.Generator, level: np.ndarray, cell: np.ndarray) -> np.ndarray:
        """A SKU number per row inside ``cell``, popular and price-matched ones more often."""
        k = pick(self.sku_w[level, cell], rng.random(len(cell)))
        return cell * self.per_cell + k
