"""Erasure (``dmp forget``, docs/privacy.md "Erasure"): hashing erased ids, and finding them in raw text.

Nothing raw of an erased account is kept: the tombstones hold ``erasure_hash`` values, i.e. the
lower-case hex sha256 of ``"dmp-erasure|" + value``, of

- the account's ``user_id`` as it is (``ops/erased_users.user_hash``);
- the *mention keys* of its identifiers (``ops/erased_identifiers``, kind ``mention``): the form a
  token of raw text is brought to before it is hashed (:func:`mention_key`), so that a quarantined
  line that names the phone or the device of an erased account is recognised later, when only the
  hashes are left;
- the *delivery keys* of its identifiers (kind ``delivery_key``): what an incremental channel may
  hold in ``ops/delivery_state.user_key`` for them (the normalised value, its md5 and sha256, for
  both phone formats), so that the state rows can be purged once the channel has been told.

Raw text (a quarantine row's ``raw``) is matched by *tokens*: maximal runs of
``[A-Za-z0-9@._+-]`` (a ``base64:`` raw is decoded first). A token matches when the hash of the
token, of the token without leading/trailing ``._-``, or of its mention key is a tombstone hash, so
``u00000420`` never matches ``u0000042`` (token boundaries) while ``"+86 138..."`` forms written
with spaces are not recognised (documented limit).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from dmp.transforms.ids import PHONE_FORMATS, hash_value, normalise_value
from dmp.transforms.quarantine import QUARANTINED, RAW_BASE64_PREFIX
from dmp.transforms.stitching import match_key

ERASURE_PREFIX = "dmp-erasure|"
# The bucket of an ingest row that belongs to an erased account (ops/ingest_runs.erased).
ERASED_USER = "erased_user"
MENTION = "mention"
DELIVERY_KEY = "delivery_key"
TOKEN_SPLIT = r"[^A-Za-z0-9@._+\-]+"
_EDGE = "._-"
_CN_MOBILE = re.compile(r"^(?:\+?86)?(1[3-9]\d{9})$")
_CN_MOBILE_SQL = r"^(\+?86)?(1[3-9][0-9]{9})$"
HASH_ALGOS = ("md5", "sha256", "none")


# ---------------------------------------------------------------- plain Python


def erasure_hash(value: str) -> str:
    """sha256 hex of ``"dmp-erasure|" + value``: the only form an erased id is kept in."""
    return hashlib.sha256((ERASURE_PREFIX + value).encode("utf-8")).hexdigest()


def mention_key(token: str) -> str | None:
    """A raw-text token's canonical form: edges ``._-`` stripped, lower case; a mainland mobile
    number (``13800138000``, ``+8613800138000``, ``138-0013-8000``) as E.164. None when empty."""
    value = token.strip(_EDGE).lower()
    phone = _CN_MOBILE.match(value.replace("-", ""))
    if phone:
        return "+86" + phone.group(1)
    return value or None


def tokens(text: str) -> list[str]:
    """The tokens of ``text`` (module docstring)."""
    return [t for t in re.split(TOKEN_SPLIT, text) if t]


def identifier_mention_keys(id_type: str, value: str) -> set[str]:
    """Mention keys an identifier can appear under in raw text: of the raw value and of its
    normalised form (:func:`dmp.transforms.stitching.match_key`, as stitching normalises it)."""
    keys = {mention_key(value.strip())}
    key = match_key(id_type, value)
    if key is not None:
        keys.add(mention_key(key))
    return {k for k in keys if k}


def delivery_keys(id_type: str, value: str) -> set[str]:
    """Every ``user_key`` a channel may have been sent for this identifier (any hash, any phone form)."""
    keys: set[str] = set()
    for phone_format in PHONE_FORMATS:
        norm, _reason = normalise_value(id_type, value, phone_format)
        if norm is not None:
            keys.update(hash_value(norm, algo) for algo in HASH_ALGOS)
    return keys


def parse_users_file(text: str, name: str) -> list[str]:
    """User ids of a ``--users`` file: one a line; blank lines and ``#`` comments (at the start of a
    line or after a space) are ignored; the ids come back sorted and distinct.

    A line holding spaces inside, or control characters, is refused naming the file and line.
    """
    from dmp.contracts.errors import DmpError

    users: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        value = re.sub(r"(^|\s)#.*$", "", line).strip()
        if not value:
            continue
        if re.search(r"\s", value) or any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise DmpError(f"{name}, line {number}: expected one user_id per line, got {value[:40]!r}")
        if len(value) > 128:
            raise DmpError(f"{name}, line {number}: a user_id is at most 128 characters")
        users.append(value)
    if not users:
        raise DmpError(f"{name}: no user ids (one user_id per line; # starts a comment)")
    return sorted(set(users))


def hashes_of(values: Iterable[str]) -> list[str]:
    return sorted({erasure_hash(v) for v in values})


# ---------------------------------------------------------------- Spark


def erasure_hash_col(value: Column) -> Column:
    """The Spark twin of :func:`erasure_hash`."""
    return F.sha2(F.concat(F.lit(ERASURE_PREFIX), value), 256)


def mention_key_col(token: Column) -> Column:
    """The Spark twin of :func:`mention_key`."""
    stripped = F.lower(F.regexp_replace(token, r"^[._\-]+|[._\-]+$", ""))
    compact = F.regexp_replace(stripped, "-", "")
    phone = F.concat(F.lit("+86"), F.regexp_extract(compact, _CN_MOBILE_SQL, 2))
    key = F.when(compact.rlike(_CN_MOBILE_SQL), phone).otherwise(stripped)
    return F.when(key != "", key)


def raw_text_col(raw: Column) -> Column:
    """``raw`` as text: a ``base64:`` raw (bad encoding) decoded, its non-UTF-8 bytes replaced."""
    prefix = len(RAW_BASE64_PREFIX)
    decoded = F.unbase64(F.substring(raw, prefix + 1, 1 << 30)).cast("string")
    return F.when(raw.startswith(RAW_BASE64_PREFIX), decoded).otherwise(raw)


def token_hashes(raw_df: DataFrame) -> DataFrame:
    """``raw, token_hash``: per distinct ``raw``, the hashes a token may match under (module docstring)."""
    exploded = (
        raw_df.select("raw")
        .distinct()
        .filter(F.col("raw").isNotNull())
        .select("raw", F.explode(F.split(raw_text_col(F.col("raw")), TOKEN_SPLIT)).alias("token"))
    )
    forms = F.array(
        F.col("token"),
        F.regexp_replace(F.col("token"), r"^[._\-]+|[._\-]+$", ""),
        mention_key_col(F.col("token")),
    )
    return (
        exploded.filter(F.col("token") != "")
        .select("raw", F.explode(forms).alias("form"))
        .filter(F.col("form").isNotNull() & (F.col("form") != ""))
        .select("raw", erasure_hash_col(F.col("form")).alias("token_hash"))
        .distinct()
    )


def erased_raws(raw_df: DataFrame, hashes_df: DataFrame) -> DataFrame:
    """The distinct ``raw`` values of ``raw_df`` that mention a hash of ``hashes_df`` (column ``hash``)."""
    wanted = hashes_df.select(F.col("hash").alias("token_hash")).distinct()
    return token_hashes(raw_df).join(F.broadcast(wanted), "token_hash", "left_semi").select("raw").distinct()


def with_erased_flag(
    df: DataFrame, user_hashes_df: DataFrame, mention_hashes_df: DataFrame, *, quarantined_only: bool = False
) -> DataFrame:
    """``df`` + boolean ``erased``: its ``user_id`` (when it has one) is tombstoned, or its ``raw``
    (when it has one) mentions an erased account's user id or identifier.

    ``user_hashes_df`` has ``hash`` (user hashes), ``mention_hashes_df`` has ``hash`` (user hashes
    and identifier mention keys); either may be empty. ``quarantined_only``: raw text counts only
    for rows whose ``status`` is quarantined (an accepted row belongs to its ``user_id``; its text
    may name an identifier it shares with an erased account).
    """
    flag = F.lit(False)
    out = df
    if "user_id" in df.columns:
        users = user_hashes_df.select(F.col("hash").alias("_uh"), F.lit(True).alias("_eu")).distinct()
        out = out.withColumn("_uh", erasure_hash_col(F.col("user_id"))).join(
            F.broadcast(users), "_uh", "left"
        )
        flag = flag | F.coalesce(F.col("_eu"), F.lit(False))
    if "raw" in df.columns:
        checked = df.filter(F.col("status") == QUARANTINED) if quarantined_only else df
        raws = erased_raws(checked, mention_hashes_df).select(
            F.col("raw").alias("_raw"), F.lit(True).alias("_er")
        )
        out = out.join(raws, F.col("raw") == F.col("_raw"), "left").drop("_raw")
        mention = F.coalesce(F.col("_er"), F.lit(False))
        flag = flag | ((mention & (F.col("status") == QUARANTINED)) if quarantined_only else mention)
    return out.withColumn("erased", flag).drop("_uh", "_eu", "_er")


def with_erased_status(
    classified_df: DataFrame, user_hashes_df: DataFrame, mention_hashes_df: DataFrame
) -> DataFrame:
    """An ingest batch's ``status`` set to ``erased_user`` for the rows of erased accounts (any
    bucket), and for quarantined lines whose raw text names an erased account or identifier."""
    flagged = with_erased_flag(classified_df, user_hashes_df, mention_hashes_df, quarantined_only=True)
    return flagged.withColumn(
        "status", F.when(F.col("erased"), F.lit(ERASED_USER)).otherwise(F.col("status"))
    ).drop("erased")
