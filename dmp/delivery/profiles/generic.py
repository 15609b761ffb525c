"""``format: generic``: today's layout (docs/downstream.md), as a profile object, byte for byte.

Gzip CSV with the header ``id_type,user_key``, rows sorted, at most 2,000,000 rows a file
(``full/part-00000.csv.gz``, ``add/…``, ``remove/…``; an empty part still gets one header-only file).
Normalisation and hashing are the channel's own (``hash`` per id type, ``phone_format``), exactly as
:func:`dmp.transforms.ids.normalise_value` and :func:`dmp.transforms.ids.hash_value` do them; the
files are :func:`dmp.delivery.plan.build_files` output, so switching a channel to the profile
changes no byte.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import ClassVar

import pandas as pd

from dmp.delivery.plan import AD_COLUMNS, ROWS_PER_FILE, build_files
from dmp.delivery.profiles.base import IdRule, KeyRow, Layout, OutFile, Profile
from dmp.transforms.ids import PHONE_FORMATS, normalise_value

# design.md §4's example channel: what `format: generic` means when no channel says otherwise.
DEFAULT_HASHES = (("oaid", "md5"), ("idfa", "md5"), ("imei", "md5"), ("phone", "sha256"), ("email", "sha256"))
_RULES = {
    "email": "trimmed, lower-cased",
    "phone": "parsed with libphonenumber (default region CN), written {phone_format}",
    "imei": "trimmed, lower-cased",
    "oaid": "trimmed, lower-cased; all-zero dropped",
    "idfa": "trimmed, upper-cased, 8-4-4-4-12 with dashes; all-zero dropped",
    "user_id": "as is",
}


def _normalise(id_type: str, phone_format: str, raw: str | None) -> tuple[str | None, str | None]:
    return normalise_value(id_type, raw, phone_format)


@dataclass(frozen=True)
class GenericProfile(Profile):
    """The channel's hash map and phone format; ``rows_per_file`` rows per gzip CSV part."""

    name: ClassVar[str] = "generic"
    hashes: tuple[tuple[str, str], ...] = DEFAULT_HASHES  # (id type, md5|sha256|none), preference order
    phone_format: str = "e164"
    rows_per_file: int = ROWS_PER_FILE

    @classmethod
    def from_channel(
        cls, id_types: Iterable[str], hashes: Mapping[str, str], phone_format: str
    ) -> GenericProfile:
        """The profile of one channel (``Channel.id_types``, ``Channel.hash``, ``Channel.phone_format``)."""
        return cls(tuple((t, hashes[t]) for t in id_types), phone_format)

    def build_rules(self) -> list[IdRule]:
        if self.phone_format not in PHONE_FORMATS:
            raise ValueError(
                f"generic: phone_format must be one of {PHONE_FORMATS}, got {self.phone_format!r}"
            )
        return [
            IdRule(
                t,
                t,
                algo,
                partial(_normalise, t, self.phone_format),
                _RULES[t].format(phone_format=self.phone_format),
            )
            for t, algo in self.hashes
        ]

    @property
    def limits(self) -> dict[str, int]:
        return {"rows_per_file": self.rows_per_file}

    def layout(self, parts: Mapping[str, Iterable[KeyRow]], *, session_seed: str = "") -> Layout:
        checked, dropped = self.sorted_parts(parts)
        frames = {
            kind: pd.DataFrame([(r.id_type, r.key) for r in rows], columns=list(AD_COLUMNS), dtype=str)
            for kind, rows in checked.items()
        }
        files = tuple(
            OutFile(name, data, rows, name.split("/", 1)[0], {})
            for name, (data, rows) in sorted(build_files(frames, self.rows_per_file).items())
        )
        return Layout(self.name, files, dict(dropped), self.limits)

    def read_file(self, name: str, data: bytes) -> list[KeyRow]:
        try:
            text = gzip.decompress(data).decode("utf-8")
        except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
            raise ValueError(f"{name}: not a gzip UTF-8 file ({exc})") from None
        reader = csv.reader(io.StringIO(text))
        header = next(reader, None)
        if header != list(AD_COLUMNS):
            raise ValueError(f"{name}: header must be {','.join(AD_COLUMNS)}, got {header}")
        rows = []
        for line, row in enumerate(reader, start=2):
            if len(row) != len(AD_COLUMNS):
                raise ValueError(f"{name}: line {line}: expected {len(AD_COLUMNS)} columns, got {len(row)}")
            rows.append(KeyRow(row[0], row[1]))
        return rows
