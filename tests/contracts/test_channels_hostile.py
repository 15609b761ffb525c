"""``channels.yaml`` destinations against hostile or careless input (issue 22, item 6).

A refused destination is reported as written in the file, naming the variables it expands and
never their values; ``..`` is refused for file:// and s3:// alike; accepted destinations come out
in one normalised spelling; the file itself goes through the guarded YAML loader.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dmp.contracts.channels import Channel, load_channels, normalise_destination
from dmp.contracts.errors import SpecError

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
BODY = "    type: ad\n    id_types: [oaid]\n    hash: {oaid: md5}\n"


def channels_file(tmp_path: Path, destination: str) -> Path:
    folder = tmp_path / "segs"
    folder.mkdir(exist_ok=True)
    (folder / "channels.yaml").write_text(f"channels:\n  jd_ads:\n    destination: {destination}\n{BODY}")
    return folder


def refusal(folder: Path) -> str:
    with pytest.raises(SpecError) as err:
        load_channels(folder)
    return str(err.value)


def test_refused_destination_names_the_variable_never_its_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The variable holds a URL with a key in it (a mistake); the refusal must not repeat it.
    monkeypatch.setenv("DELIVERY_ROOT", f"s3://AKIAEXAMPLE:{SECRET}@bucket")
    folder = channels_file(tmp_path, "${DELIVERY_ROOT}/ads")
    msg = refusal(folder)
    assert SECRET not in msg and "AKIAEXAMPLE" not in msg
    assert msg == (
        f"{folder / 'channels.yaml'}: channels.jd_ads.destination: the bucket may hold only letters, digits, "
        "'.', '-' and '_' (no user:password@, no :port); expected s3://bucket/prefix; "
        "got '${DELIVERY_ROOT}/ads' (with DELIVERY_ROOT from the environment; values not shown)"
    )


def test_unsupported_scheme_from_a_variable_is_not_echoed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DELIVERY_ROOT", f"https://user:{SECRET}@example.com/x")
    monkeypatch.setenv("DELIVERY_SUB", "ads")
    folder = channels_file(tmp_path, "${DELIVERY_ROOT}/${DELIVERY_SUB:-x}")
    msg = refusal(folder)
    assert SECRET not in msg and "example.com" not in msg
    assert msg == (
        f"{folder / 'channels.yaml'}: channels.jd_ads.destination: expected s3://bucket/prefix or "
        "file:///absolute/path; got '${DELIVERY_ROOT}/${DELIVERY_SUB:-x}' (with DELIVERY_ROOT, DELIVERY_SUB "
        "from the environment; values not shown)"
    )


def test_a_credential_variable_is_refused_even_when_the_url_is_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A secret is a valid path segment: without this check it would become part of every delivery path.
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    folder = channels_file(tmp_path, "s3://bucket/${AWS_SECRET_ACCESS_KEY}")
    msg = refusal(folder)
    assert SECRET not in msg
    assert msg == (
        f"{folder / 'channels.yaml'}: channels.jd_ads.destination: names AWS_SECRET_ACCESS_KEY, which holds a "
        "credential, not a location; destinations may name only variables holding a location (credentials "
        "come from the AWS chain or DMP_AWS_CONN_ID)"
    )


def test_unset_variable_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    folder = channels_file(tmp_path, "${NOT_SET_ANYWHERE}/ads")
    assert refusal(folder) == (
        f"{folder / 'channels.yaml'}: channels.jd_ads.destination: environment variable NOT_SET_ANYWHERE is "
        "not set and has no default (use ${NOT_SET_ANYWHERE:-...}); got '${NOT_SET_ANYWHERE}/ads' "
        "(with NOT_SET_ANYWHERE from the environment; values not shown)"
    )


DOTDOT = (
    "'..' folders are not allowed: a destination may not climb out of the folder it names; expected "
    "s3://bucket/prefix or file:///absolute/path with plain folder names"
)
ENCODED = (
    "percent-encoded '/', '.' or '..' in a folder name is not allowed; expected s3://bucket/prefix or "
    "file:///absolute/path with plain folder names"
)


@pytest.mark.parametrize(
    ("destination", "problem"),
    [
        ("file:///a/../../etc", DOTDOT),
        ("s3://bucket/a/../b", DOTDOT),
        ("s3://bucket/..", DOTDOT),
        ("file:///srv/out/%2e%2e/etc", ENCODED),
        ("s3://bucket/a%2F..%2Fb", ENCODED),
        (
            "file:///srv/out?x=1",
            "a destination is a location only: no ?query or #fragment; expected "
            "s3://bucket/prefix or file:///absolute/path",
        ),
        ("file:///", "a file destination needs a folder below the root: file:///absolute/path"),
        ("file://host/srv", "expected s3://bucket/prefix or file:///absolute/path"),
        ("s3:///prefix", "s3 destination needs a bucket: s3://bucket/prefix"),
    ],
)
def test_destinations_that_could_leave_their_folder(tmp_path: Path, destination: str, problem: str) -> None:
    folder = channels_file(tmp_path, f'"{destination}"')
    assert refusal(folder) == (
        f"{folder / 'channels.yaml'}: channels.jd_ads.destination: {problem}; got {destination!r}"
    )


def test_dotdot_arriving_through_a_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DELIVERY_ROOT", "file:///srv/out/../../etc")
    folder = channels_file(tmp_path, "${DELIVERY_ROOT}/ads")
    msg = refusal(folder)
    assert "/etc" not in msg
    assert msg.endswith(
        f"{DOTDOT}; got '${{DELIVERY_ROOT}}/ads' (with DELIVERY_ROOT from the environment; values not shown)"
    )


@pytest.mark.parametrize(
    ("written", "normalised"),
    [
        ("file:///a//b", "file:///a/b"),
        ("file:///srv/out/", "file:///srv/out"),
        ("file:///srv/./out//x/", "file:///srv/out/x"),
        ("s3://bucket", "s3://bucket"),
        ("s3://bucket/", "s3://bucket"),
        ("s3://bucket//ads///jd/", "s3://bucket/ads/jd"),
        ("s3://dmp-out.cn/ads", "s3://dmp-out.cn/ads"),
    ],
)
def test_accepted_destinations_are_normalised(tmp_path: Path, written: str, normalised: str) -> None:
    assert normalise_destination(written) == normalised
    assert load_channels(channels_file(tmp_path, written)).get("jd_ads").destination == normalised
    # Built directly (tests, library users): the same rule, no environment expansion.
    assert (
        Channel(type="ad", destination=written, id_types=["oaid"], hash={"oaid": "md5"}).destination
        == normalised
    )


def test_expanded_destination_is_normalised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DELIVERY_ROOT", "s3://dmp-out/")
    folder = channels_file(tmp_path, "${DELIVERY_ROOT}/ads/")
    assert load_channels(folder).get("jd_ads").destination == "s3://dmp-out/ads"


def test_channel_names_and_markup_in_messages(tmp_path: Path) -> None:
    folder = tmp_path / "segs"
    folder.mkdir()
    (folder / "channels.yaml").write_text(f"channels:\n  JD-Ads:\n    destination: file:///srv/x\n{BODY}")
    assert refusal(folder) == (
        f"{folder / 'channels.yaml'}: channels: channel names must match ^[a-z0-9_]+$, got 'JD-Ads'"
    )


def test_channels_yaml_goes_through_the_guarded_loader(tmp_path: Path) -> None:
    folder = tmp_path / "segs"
    folder.mkdir()
    laughs = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    laughs += [f"{c}: &{c} [{', '.join(['*' + p] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)]
    (folder / "channels.yaml").write_text("\n".join(laughs) + "\nchannels: *i\n")
    # Refused while composing, at the first anchor that would expand past the budget (9**5 > 100,000).
    assert refusal(folder) == (
        f"{folder / 'channels.yaml'}: f: the value at line 6, column 4 expands to more than 100000 values "
        "(aliases repeat what they name); at most 100000 values are allowed"
    )
    (folder / "channels.yaml").write_bytes("channels: {}\n# 渠道\n".encode("gbk"))
    assert refusal(folder) == (
        f"{folder / 'channels.yaml'}: not UTF-8: byte 0xc7 at offset 15 (line 2) is not valid UTF-8; "
        "save the file as UTF-8"
    )
