"""``channels.yaml`` ``cost:`` (issue 19, item 6): what a delivery costs, validated with errors that
name the file, the field and what is expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from dmp.contracts.channels import ChannelCost, load_channels
from dmp.contracts.errors import SpecError

AD = "    type: ad\n    destination: file:///tmp/x/ads\n    id_types: [oaid]\n    hash: {oaid: md5}\n"
COUPON = (
    "    type: coupon\n    destination: file:///tmp/x/c\n    id_types: [user_id]\n    hash: {user_id: none}\n"
)


def folder_with(tmp_path: Path, cost: str, body: str = AD) -> Path:
    folder = tmp_path / "segs"
    folder.mkdir(exist_ok=True)
    (folder / "channels.yaml").write_text(f"channels:\n  jd_ads:\n{body}    cost: {cost}\n")
    return folder


def test_the_three_prices(tmp_path: Path) -> None:
    per_user = load_channels(folder_with(tmp_path, "{per_user: 0.02}")).channels["jd_ads"].cost
    assert per_user == ChannelCost(per_user=0.02) and per_user.delivery_cost(1200) == pytest.approx(24.0)
    per_mille = load_channels(folder_with(tmp_path, "{per_mille: 35}")).channels["jd_ads"].cost
    assert per_mille is not None and per_mille.delivery_cost(4000) == pytest.approx(140.0)
    coupon = load_channels(folder_with(tmp_path, "{per_user: 0.1, coupon_redemptions: true}", COUPON))
    cost = coupon.channels["jd_ads"].cost
    assert cost is not None and cost.coupon_redemptions and cost.delivery_cost(10) == pytest.approx(1.0)
    only_coupons = ChannelCost(coupon_redemptions=True)
    assert only_coupons.delivery_cost(10_000) == 0.0
    # no cost is allowed (the report then says the ROI is not known), and is not 0
    (tmp_path / "segs" / "channels.yaml").write_text(f"channels:\n  jd_ads:\n{AD}")
    assert load_channels(tmp_path / "segs").channels["jd_ads"].cost is None


@pytest.mark.parametrize(
    ("cost", "message"),
    [
        ("{per_user: -1}", "channels.jd_ads.cost.per_user: got -1; expected a number >= 0 in the GMV's currency"),
        ("{per_user: '0.5'}", "channels.jd_ads.cost.per_user: got '0.5'; expected a number >= 0 in the GMV's currency"),
        ("{per_mille: true}", "channels.jd_ads.cost.per_mille: got True; expected a number >= 0 in the GMV's currency"),
        ("{per_mille: .inf}", "channels.jd_ads.cost.per_mille: got inf; expected a number >= 0 in the GMV's currency"),
        ("{per_user: 1, per_mille: 2}", "channels.jd_ads.cost: give per_user or per_mille, not both"),
        ("{}", "channels.jd_ads.cost: an empty cost; expected at least one of per_user: PRICE, per_mille: PRICE"),
        ("{per_mile: 20}", "channels.jd_ads.cost.per_mile: unknown field (allowed: per_user, per_mille, coupon_redemptions)"),
        ("cheap", "channels.jd_ads.cost: got 'cheap'; expected a mapping: per_user: PRICE"),
        ("{coupon_redemptions: yes please}", "channels.jd_ads.cost.coupon_redemptions: got 'yes please'; expected true or false"),
        (
            "{coupon_redemptions: true}",
            "channels.jd_ads: cost.coupon_redemptions: only a coupon channel redeems coupons (this one is type 'ad'); "
            "give per_user or per_mille",
        ),
    ],
)  # fmt: skip
def test_cost_errors_name_file_field_and_expected(tmp_path: Path, cost: str, message: str) -> None:
    folder = folder_with(tmp_path, cost)
    with pytest.raises(SpecError) as err:
        load_channels(folder)
    assert str(err.value).startswith(f"{folder / 'channels.yaml'}: {message}")


def test_an_unknown_channel_field_lists_cost_among_the_allowed(tmp_path: Path) -> None:
    folder = tmp_path / "segs"
    folder.mkdir()
    (folder / "channels.yaml").write_text(f"channels:\n  jd_ads:\n{AD}    costs: {{per_user: 1}}\n")
    with pytest.raises(SpecError) as err:
        load_channels(folder)
    assert str(err.value) == (
        f"{folder / 'channels.yaml'}: channels.jd_ads.costs: unknown field "
        "(allowed: type, destination, id_types, hash, phone_format, sync, cost, purpose, priority, frequency_cap)"
    )


def test_the_repo_channels_file_still_loads() -> None:
    repo = Path(__file__).resolve().parents[2] / "segments"
    config = load_channels(repo)
    assert {"jd_ads", "coupon_center"} <= set(config.channels)
