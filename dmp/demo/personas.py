"""Demo personas and the per-user behaviour parameters drawn around them.

Every user has a persona (casual, bargain_hunter, home_maker, beauty_fan, gadget_lover,
premium_buyer) that sets category and brand preferences, price level, funnel rates and coupon
behaviour; each user's own parameters are drawn around the persona's (Gamma / Beta noise).
Activity is heavy-tailed: a user is active on a day with probability ``p_active`` (Beta) and then
views Poisson(``rate``) products, ``rate`` log-normal (sigma 0.9) -> a few very active users.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dmp.demo.model import N_BRANDS, N_CATEGORIES
from dmp.demo.sampling import beta, pick


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


@dataclass
class UserParams:
    """Behaviour parameters of one chunk of users, one array entry per user."""

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


def draw_users(rng: np.random.Generator, n: int, days: int) -> UserParams:
    """Personas and parameters of ``n`` users; the draw order is fixed (it sets every later byte)."""
    shares = np.array([p.share for p in PERSONAS])
    persona = pick(np.broadcast_to(shares, (n, len(shares))), rng.random(n))

    def per(attr: str) -> np.ndarray:
        return np.array([getattr(p, attr) for p in PERSONAS], dtype=float)[persona]

    levels = np.array([p.price_levels for p in PERSONAS])[persona]
    price_level = pick(levels, rng.random(n))
    sigma = 0.9
    rate = np.exp(np.log(per("views_per_active_day")) - sigma**2 / 2 + sigma * rng.standard_normal(n))
    rate = np.minimum(rate, 60.0)
    cat_w = np.array([p.categories for p in PERSONAS])[persona] * rng.gamma(2.0, 0.5, (n, N_CATEGORIES))
    brand_w = np.array([p.brands for p in PERSONAS])[persona] * rng.gamma(2.0, 0.5, (n, N_BRANDS))
    channel_w = rng.dirichlet(np.array([0.62, 0.13, 0.25]) * 8, n)
    new_user = rng.random(n) < 0.25
    join_day = np.where(new_user, rng.integers(0, max(days, 1), n), 0)
    churns = rng.random(n) < 0.12
    churn_day = np.where(churns, join_day + 1 + (rng.random(n) * (days - join_day)).astype(int), days)
    return UserParams(
        persona=persona,
        platform=(rng.random(n) < 0.28).astype(np.int8),
        price_level=price_level,
        rate=rate,
        p_active=beta(rng, per("active_share"), 6.0),
        p_cart=beta(rng, per("cart_rate"), 20.0),
        p_order=beta(rng, per("order_rate"), 10.0),
        p_fav=beta(rng, per("favorite_rate"), 20.0),
        coupon_rate=beta(rng, per("coupon_rate"), 5.0),
        coupon_sens=beta(rng, per("coupon_sensitivity"), 6.0),
        cat_w=cat_w,
        brand_w=brand_w,
        channel_w=channel_w,
        is_new=new_user,
        join_day=join_day,
        churn_day=np.minimum(churn_day, days),
    )
