"""What delivery needs from the segment specs: each segment's channels and coupon (design.md §4).

Delivery reads only these few fields, so it takes them as small frozen models instead of the whole
spec; a spec that does not validate has no target and its pack is reported, never delivered.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CouponSettings:
    """The spec's ``coupon:`` block, as a coupon channel's rows carry it."""

    coupon_id: str
    value: float
    threshold: float
    valid_days: int


@dataclass(frozen=True)
class DeliveryTarget:
    """What delivery needs from a segment spec."""

    segment: str
    channels: tuple[str, ...]
    coupon: CouponSettings | None = None
    source: str = ""  # spec file, for messages
    # The spec's min_size, checked again after consent: fewer consented treated users than this and
    # the channel gets an empty audience (docs/privacy.md).
    min_size: int = 0


def targets_from_specs(segments_dir: str) -> tuple[dict[str, DeliveryTarget], list[str]]:
    """Delivery targets of the valid specs in ``segments_dir`` and the spec errors (one line each)."""
    from dmp.contracts.specs import load_specs

    spec_set = load_specs(segments_dir)
    targets: dict[str, DeliveryTarget] = {}
    for name, spec in spec_set.specs.items():
        coupon = None
        if spec.coupon is not None:
            coupon = CouponSettings(
                coupon_id=spec.coupon.coupon_id,
                value=float(spec.coupon.value),
                threshold=float(spec.coupon.threshold),
                valid_days=int(spec.coupon.valid_days),
            )
        targets[name] = DeliveryTarget(
            name, tuple(spec.channels), coupon, str(spec_set.path_of.get(name, "")), spec.min_size
        )
    return targets, [str(e) for e in spec_set.errors]
