"""A hash sample of people: the same people whatever the spec, independent of every pack's holdout.

A person is in the sample when the bucket of (``SAMPLE_SALT``, ``SAMPLE_NAME``, holdout key) is
below the fraction (``dmp.contracts.holdout``'s hash). The holdout key is the person's oldest
account (the account itself when it is in no stitched person), so all accounts of a person are
in or out together, and a person's sample membership does not depend on which of their accounts
qualified. Another salt than any spec's holdout salt, so being sampled says nothing about a
person's group.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from dmp.contracts.holdout import holdout_bucket_col
from dmp.transforms.persons import one_per_person, with_person_keys

SAMPLE_SALT = "dmp-estimate-v1"
SAMPLE_NAME = "sample"


def filter_sample(df: DataFrame, fraction: float, key: str = "holdout_key") -> DataFrame:
    """The rows whose ``key`` falls in the sample of ``fraction`` (0 < fraction <= 1)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if fraction == 1:
        return df
    return df.filter(holdout_bucket_col(SAMPLE_SALT, SAMPLE_NAME, key) < F.lit(fraction))


def sampled_people(cands_df: DataFrame, keys_df: DataFrame | None, fraction: float) -> DataFrame:
    """A pack's candidates as people (one row per person, as the build keeps them), sampled people only.

    The sample is drawn before people are deduplicated, on the person's holdout key, so it keeps
    or drops each person whole."""
    return (
        cands_df.transform(with_person_keys, keys_df)
        .transform(filter_sample, fraction)
        .transform(one_per_person)
    )
