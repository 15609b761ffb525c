"""Deterministic holdout assignment: ``hash(salt, segment, user_id)`` -> a bucket in [0, 1).

A user's group depends only on (salt, segment, user_id), so it is stable across days and reruns,
and the generator (which plants campaign effects) and the pack builder agree on it exactly.
The Python and Spark versions below return bit-identical buckets: both take the first 15 hex digits
of SHA-256 (60 bits, fits a signed long) and divide by 2**60, which is exact in double precision.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from dmp.contracts.vocab import HOLDOUT, TREATMENT

if TYPE_CHECKING:  # pyspark is imported lazily so the pure-Python generator does not load it
    from pyspark.sql import Column

DEFAULT_SALT = "dmp-v1"
_SCALE = float(2**60)


def holdout_bucket(salt: str, segment: str, user_id: str) -> float:
    digest = hashlib.sha256(f"{salt}|{segment}|{user_id}".encode()).hexdigest()
    return int(digest[:15], 16) / _SCALE


def is_holdout(salt: str, segment: str, user_id: str, holdout: float) -> bool:
    return holdout_bucket(salt, segment, user_id) < holdout


def holdout_bucket_col(salt: str, segment: str, user_id: Column | str = "user_id") -> Column:
    from pyspark.sql import functions as F

    user = F.col(user_id) if isinstance(user_id, str) else user_id
    key = F.concat_ws("|", F.lit(salt), F.lit(segment), user.cast("string"))
    return F.conv(F.substring(F.sha2(key, 256), 1, 15), 16, 10).cast("long").cast("double") / F.lit(_SCALE)


def group_col(salt: str, segment: str, holdout: float, user_id: Column | str = "user_id") -> Column:
    """'holdout' when the user's bucket is below the holdout share, else 'treatment'."""
    from pyspark.sql import functions as F

    return F.when(holdout_bucket_col(salt, segment, user_id) < F.lit(holdout), F.lit(HOLDOUT)).otherwise(
        F.lit(TREATMENT)
    )
