"""The consent purpose a channel needs: by default its type's, or the one channels.yaml names."""

from __future__ import annotations

from pathlib import Path

import pytest

from dmp.contracts.channels import load_channels
from dmp.contracts.errors import SpecError

YAML = """\
channels:
  jd_ads:
    type: ad
    destination: file:///tmp/ads
    id_types: [oaid]
    hash: {oaid: md5}
  coupon_center:
    type: coupon
    destination: file:///tmp/coupons
    id_types: [user_id]
    hash: {user_id: none}
  sms:
    type: coupon
    destination: file:///tmp/sms
    id_types: [user_id]
    hash: {user_id: none}
    purpose: %s
"""


def _load(tmp_path: Path, purpose: str):
    (tmp_path / "channels.yaml").write_text(YAML % purpose)
    return load_channels(tmp_path)


def test_default_purpose_follows_the_channel_type_and_an_explicit_one_wins(tmp_path: Path) -> None:
    channels = _load(tmp_path, "ad_personalization").channels
    assert channels["jd_ads"].consent_purpose == "ad_personalization"
    assert channels["coupon_center"].consent_purpose == "marketing_messages"
    assert channels["sms"].consent_purpose == "ad_personalization"


def test_an_unknown_purpose_names_file_field_and_the_allowed_values(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as err:
        _load(tmp_path, "newsletters")
    text = str(err.value)
    assert "channels.yaml" in text and "sms" in text and "purpose" in text
    assert "ad_personalization" in text and "marketing_messages" in text
