"""Erasure hashing and raw-text matching (dmp.transforms.erasure), known answers by hand."""

from __future__ import annotations

import hashlib
import json

import pytest

from dmp.contracts.errors import DmpError
from dmp.transforms.erasure import (
    ERASED_USER,
    delivery_keys,
    erased_raws,
    erasure_hash,
    identifier_mention_keys,
    mention_key,
    parse_users_file,
    tokens,
    with_erased_flag,
    with_erased_status,
)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_erasure_hash_is_salted_sha256_hex() -> None:
    assert erasure_hash("u0000042") == _sha("dmp-erasure|u0000042")
    assert erasure_hash("u0000042") != _sha("u0000042")


def test_mention_keys_normalise_phones_emails_and_devices() -> None:
    assert mention_key("138-0013-8000") == "+8613800138000"
    assert mention_key("8613800138000") == "+8613800138000"
    assert mention_key("A.Person@Example.COM.") == "a.person@example.com"
    assert mention_key("...") is None
    assert identifier_mention_keys("phone", "138 0013 8000") == {"138 0013 8000", "+8613800138000"}
    assert identifier_mention_keys("idfa", "ab12cd34ef56ab12cd34ef56ab12cd34") == {
        "ab12cd34ef56ab12cd34ef56ab12cd34",
        "ab12cd34-ef56-ab12-cd34-ef56ab12cd34",
    }
    assert tokens('{"user_id": "u00000420", "p": "+86 1380"}') == ["user_id", "u00000420", "p", "+86", "1380"]


def test_delivery_keys_cover_every_hash_and_phone_form() -> None:
    keys = delivery_keys("phone", "13800138000")
    e164, cn11 = "+8613800138000", "13800138000"
    expected = (
        {e164, cn11} | {hashlib.md5(v.encode()).hexdigest() for v in (e164, cn11)} | {_sha(e164), _sha(cn11)}
    )
    assert keys == expected
    assert delivery_keys("user_id", "u1") == {"u1", hashlib.md5(b"u1").hexdigest(), _sha("u1")}


def test_users_file_ignores_comments_and_names_the_bad_line() -> None:
    assert parse_users_file("# erasure 7\nu2\n\nu1   # asked by mail\nu2\n", "f.txt") == ["u1", "u2"]
    with pytest.raises(DmpError, match=r"^f.txt, line 3: expected one user_id per line"):
        parse_users_file("u1\n\nu 2\n", "f.txt")
    with pytest.raises(DmpError, match="no user ids"):
        parse_users_file("# nothing\n\n", "f.txt")


def _hashes(spark, values: list[str]):
    return spark.createDataFrame([(erasure_hash(v),) for v in values], "hash string")


def test_raw_text_matches_by_token_phone_and_base64(spark) -> None:
    import base64

    raws = [
        json.dumps({"user_id": "u0000042", "event_type": "nope"}),  # the user
        json.dumps({"user_id": "u00000420", "event_type": "view"}),  # a longer id: no match
        "uu0000042,view",  # inside another token: no match
        "call 138-0013-8000 please",  # the phone, other format
        "base64:" + base64.b64encode(b'{"user_id":"u0000042"}\xff').decode(),  # bad encoding
        "u9,+8613900139000",  # someone else
    ]
    raw_df = spark.createDataFrame([(r,) for r in raws + [None]], "raw string")
    hashes = _hashes(spark, ["u0000042", *identifier_mention_keys("phone", "+8613800138000")])
    found = {r["raw"] for r in erased_raws(raw_df, hashes).collect()}
    assert found == {raws[0], raws[3], raws[4]}


def test_with_erased_status_moves_any_bucket_of_an_erased_account(spark) -> None:
    rows = [
        ("u1", "accepted", None, "{}"),
        ("u1", "duplicate_in_batch", None, "{}"),
        ("u2", "accepted", None, "{}"),
        (None, "quarantined", "malformed_json", '{"user_id": "u1"'),
        (None, "quarantined", "malformed_json", '{"user_id": "u10"'),
    ]
    df = spark.createDataFrame(rows, "user_id string, status string, reason string, raw string")
    users = _hashes(spark, ["u1"])
    out = with_erased_status(df, users, users).orderBy("raw", "user_id", "status").collect()
    got = sorted(((r["user_id"], r["status"], r["raw"]) for r in out), key=str)
    assert got == sorted(
        [
            ("u1", ERASED_USER, "{}"),
            ("u1", ERASED_USER, "{}"),
            ("u2", "accepted", "{}"),
            (None, ERASED_USER, '{"user_id": "u1"'),
            (None, "quarantined", '{"user_id": "u10"'),
        ],
        key=str,
    )
    flags = with_erased_flag(df.select("user_id"), users, users).filter("erased").count()
    assert flags == 2


def test_cli_refuses_a_bad_users_file_naming_file_and_line(tmp_path, capsys) -> None:
    from dmp.cli import run

    bad = tmp_path / "users.txt"
    bad.write_text("u1\n# ok\nu2 u3\n")
    assert run(["forget", "--users", str(bad), "--request-id", "r1", "--lake", str(tmp_path)]) == 1
    assert f"{bad}, line 3: expected one user_id per line" in capsys.readouterr().err
    assert run(["forget", "--lake", str(tmp_path)]) == 1
    assert "give --users FILE --request-id ID, or --status ID, or --vacuum" in capsys.readouterr().err
    assert run(["forget", "--users", str(tmp_path / "nope.txt"), "--request-id", "r1"]) == 1
    assert "nope.txt: cannot read it" in capsys.readouterr().err


def test_a_vacuum_covers_the_requests_finished_a_retention_ago() -> None:
    from datetime import datetime

    from dmp.steps.forget_status import split_covered

    no_state = '{"ops/delivery_state": {"status": "missing", "rows": 0}}'  # no channel held their keys
    reqs = [
        {"request_id": "b", "finished_at": datetime(2026, 3, 1, 12), "tables_json": no_state},
        {"request_id": "a", "finished_at": datetime(2026, 3, 8, 12), "tables_json": no_state},
        {"request_id": "c", "finished_at": None, "tables_json": no_state},
    ]
    now = datetime(2026, 3, 8, 12)
    assert split_covered(reqs, now, 168.0) == (["b"], ["a", "c"])
    assert split_covered(reqs, now, 0.0) == (["a", "b"], ["c"])
