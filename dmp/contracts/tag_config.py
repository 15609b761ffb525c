"""Thresholds and weights of the tags that are ours to define (design.md §3 leaves them to us).

Defaults live here; ``dmp tags --config FILE`` overrides any of them from YAML, e.g.::

    lifecycle:            # days, counted back from as_of_date (as_of itself is day 1)
      new_days: 14        # first event within the last 14 days            -> new
      active_days: 30     # otherwise: any event within the last 30 days   -> active
      churn_days: 90      # otherwise: any event within the last 90 days   -> silent, else churned
    top_n: 3              # length of top_category_ids / top_brand_ids / top_store_ids
    weights:              # activity score per event, summed over 30 days for the top_* tags
      view: 1
      order: 5

Only ``weights`` shape the incremental state (``gold/user_tag_state``), so changing them makes the
next ``dmp tags`` run fall back to a full rebuild (the state records a fingerprint of the weights);
lifecycle thresholds and ``top_n`` apply when the snapshot is derived from the state and take effect
immediately.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dmp.contracts.errors import DmpError
from dmp.contracts.safe_yaml import load_yaml_file

# Values of gold/user_tags.lifecycle_stage, from the most to the least engaged (see LifecycleConfig).
LIFECYCLE_STAGES: tuple[str, ...] = ("new", "active", "silent", "churned")


class LifecycleConfig(BaseModel):
    """Days since the first / last event that separate the LIFECYCLE_STAGES."""

    model_config = ConfigDict(extra="forbid")

    new_days: int = Field(14, ge=1, le=365)
    active_days: int = Field(30, ge=1, le=3650)
    churn_days: int = Field(90, ge=1, le=3650)

    @model_validator(mode="after")
    def _ordered(self) -> LifecycleConfig:
        if self.active_days >= self.churn_days:
            raise ValueError(f"active_days ({self.active_days}) must be < churn_days ({self.churn_days})")
        return self


class ActivityWeights(BaseModel):
    """Score of one event of each type; all >= 1 so that a score > 0 means "active in the window"."""

    model_config = ConfigDict(extra="forbid")

    view: int = Field(1, ge=1, le=1000)
    click: int = Field(1, ge=1, le=1000)
    search: int = Field(1, ge=1, le=1000)
    cart_add: int = Field(3, ge=1, le=1000)
    cart_remove: int = Field(1, ge=1, le=1000)
    favorite: int = Field(2, ge=1, le=1000)
    order: int = Field(5, ge=1, le=1000)
    coupon_receive: int = Field(1, ge=1, le=1000)
    coupon_redeem: int = Field(2, ge=1, le=1000)


class TagConfig(BaseModel):
    """Everything of the tags that is ours to define; ``dmp tags --config FILE`` overrides it."""

    model_config = ConfigDict(extra="forbid")

    lifecycle: LifecycleConfig = Field(default_factory=LifecycleConfig)
    top_n: int = Field(3, ge=1, le=20)
    weights: ActivityWeights = Field(default_factory=ActivityWeights)

    def state_fingerprint(self) -> str:
        """Hash of what is baked into the incremental state: the activity weights and the state format
        (``v``: 2 since the ranked 30-day scores moved into the state row)."""
        payload = json.dumps({"v": 2, "weights": self.weights.model_dump()}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def load_tag_config(path: str | Path | None) -> TagConfig:
    """Defaults, overridden by the YAML file at ``path`` if given; errors name the file and the field."""
    if path is None:
        return TagConfig()
    p = Path(path)
    if not p.is_file():
        raise DmpError(f"{p}: tag config file not found")
    raw = load_yaml_file(p) or {}  # YamlRefused (a DmpError) names the file and what is wrong
    if not isinstance(raw, dict):
        raise DmpError(f"{p}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return TagConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(x) for x in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors()
        )
        raise DmpError(f"{p}: invalid tag config: {problems}") from exc
