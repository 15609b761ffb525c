"""Where the lake's tables live: the one home of every table name and path (design.md §3).

Root: ``--lake PATH`` or ``DMP_LAKE``, default ``./lakehouse``; each table is a Delta table at
``<lake>/<layer>/<name>``. Paths are plain strings so ``s3a://`` lakes work too. No pyspark here:
the Airflow side and ``dmp summary`` use these names as well as the Spark steps.
"""

from __future__ import annotations

import os

DEFAULT_LAKE = "./lakehouse"

EVENTS = "bronze/events"
EVENTS_QUARANTINE = "bronze/events_quarantine"
INGEST_RUNS = "ops/ingest_runs"
IDENTITIES = "silver/identities"
IDENTITIES_QUARANTINE = "bronze/identities_quarantine"
DELIVERY_STATE = "ops/delivery_state"
USER_DAILY = "silver/user_daily"
USER_TAGS = "gold/user_tags"
USER_TAG_STATE = "gold/user_tag_state"
AUDIENCE_PACKS = "gold/audience_packs"
PACK_RUNS = "ops/pack_runs"
PACK_OVERLAP = "gold/pack_overlap"
SUPPRESSION_LISTS = "silver/suppression_lists"
DELIVERIES = "ops/deliveries"
CHANNEL_CONTACTS = "ops/channel_contacts"
UPLIFT_RESULTS = "gold/uplift_results"
PERSONS = "silver/persons"
PERSON_IDENTIFIERS = "silver/person_identifiers"
IDENTITY_VIOLATIONS = "ops/identity_violations"
CONSENTS = "silver/consents"
CONSENTS_QUARANTINE = "bronze/consents_quarantine"
ERASURE_REQUESTS = "ops/erasure_requests"
ERASED_USERS = "ops/erased_users"
ERASED_IDENTIFIERS = "ops/erased_identifiers"


def resolve_lake(lake: str | None) -> str:
    """The lake root: explicit value, else ``DMP_LAKE``, else ``./lakehouse`` (absolute for local paths)."""
    root = lake or os.environ.get("DMP_LAKE") or DEFAULT_LAKE
    if "://" in root:
        return root.rstrip("/")
    return os.path.abspath(root)


def table_path(lake: str, table: str) -> str:
    return f"{lake.rstrip('/')}/{table}"
