"""Vocabularies every layer shares (design.md §3, §4): one definition each, no pyspark."""

from __future__ import annotations

EVENT_TYPES: tuple[str, ...] = (
    "view",
    "click",
    "search",
    "cart_add",
    "cart_remove",
    "favorite",
    "order",
    "coupon_receive",
    "coupon_redeem",
)

# silver/user_daily's counter column for each event type (spec ``behaviors`` name event types).
DAILY_COUNTERS: dict[str, str] = {
    "view": "views",
    "click": "clicks",
    "search": "searches",
    "cart_add": "carts",
    "cart_remove": "cart_removes",
    "favorite": "favs",
    "order": "orders",
    "coupon_receive": "coupon_receives",
    "coupon_redeem": "coupon_redeems",
}
assert tuple(DAILY_COUNTERS) == EVENT_TYPES

# gold/audience_packs.group: who gets the campaign and who is held out to measure it.
TREATMENT = "treatment"
HOLDOUT = "holdout"
GROUPS: tuple[str, ...] = (TREATMENT, HOLDOUT)

# Identifier types of silver/identities (user -> device / phone / email).
ID_TYPES: tuple[str, ...] = ("oaid", "idfa", "imei", "phone", "email")
# What a channel may deliver: any identity type, or the account id itself (coupon systems).
CHANNEL_ID_TYPES: tuple[str, ...] = (*ID_TYPES, "user_id")
# The app surfaces an event may come from (bronze/events.channel).
EVENT_CHANNELS: tuple[str, ...] = ("app", "pc", "mini_program")
# Taobao UserBehavior codes -> our event types.
TAOBAO_BEHAVIORS: dict[str, str] = {"pv": "view", "cart": "cart_add", "fav": "favorite", "buy": "order"}
# Landing formats `dmp ingest` reads.
INGEST_FORMATS: tuple[str, ...] = ("jsonl", "parquet", "taobao")


# Tag columns marketers may filter on in a spec's `where:` (name -> kind used by the spec validator).
TAG_COLUMN_KINDS: dict[str, str] = {
    "recency_days": "number",
    "frequency_90d": "number",
    "monetary_90d": "number",
    "lifecycle_stage": "string",
    "top_category_ids": "array",
    "top_brand_ids": "array",
    "top_store_ids": "array",
    "consumption_level": "number",
    "coupon_sensitivity": "number",
    "is_cart_abandoner": "boolean",
    "last_active_date": "date",
    "first_seen_date": "date",
    "last_order_date": "date",
    "views_30d": "number",
    "carts_30d": "number",
    "orders_30d": "number",
    "active_days_30d": "number",
    "avg_order_value_90d": "number",
}

# Consent (silver/consents, docs/privacy.md): what a user allowed, per purpose. A channel needs the
# purpose of its type unless channels.yaml names another (``purpose:``).
CONSENT_PURPOSES: tuple[str, ...] = ("ad_personalization", "marketing_messages")
PURPOSE_OF_CHANNEL_TYPE: dict[str, str] = {"ad": "ad_personalization", "coupon": "marketing_messages"}
# Why a treated user is not delivered to a channel for lack of consent (manifest ``excluded_by_reason``):
# no consent event at all for the purpose, or the latest one withdrew (or refused) it.
NO_CONSENT = "no_consent"
REVOKED = "revoked"
# Consented treated users left out because fewer of them than the spec's min_size remain.
BELOW_MIN_SIZE = "below_min_size"
CONSENT_EXCLUSIONS: tuple[str, ...] = (NO_CONSENT, REVOKED, BELOW_MIN_SIZE)
# A treated account whose person (silver/persons at delivery time) also has an account in the pack's
# holdout: nothing of that person is delivered (docs/identity.md).
HOLDOUT_PERSON = "holdout_person"
# dmp forget --vacuum / the dmp_daily vacuum_erasures task: how long deleted files and log entries are
# kept before the purge removes them (Delta's own VACUUM default; 0 = a confirmed immediate purge).
ERASURE_RETENTION_HOURS = 168.0
