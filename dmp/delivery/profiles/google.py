"""``format: google``: Google Ads Customer Match (``OfflineUserDataJobService``).

Sources (see docs/platforms.md): Google Ads API "Customer Match" (SHA-256 of email trimmed +
lower-cased; dots before ``@gmail.com`` / ``@googlemail.com`` may be removed), "Manage online click
conversions: normalize and hash" (phone in E.164; Google's sample ``normalize_and_hash_email_address``
strips those dots and keeps a ``+suffix``), ``UserData.consent`` / ``Consent`` (``ad_user_data``,
``ad_personalization``: GRANTED, DENIED, UNSPECIFIED), ``OfflineUserDataJobOperation``
(``create``, ``remove``, ``remove_all``) and the 100,000 identifiers per
``AddOfflineUserDataJobOperations`` request.

- ``hashed_email``: SHA-256 of the address trimmed, lower-cased, dots removed from the local part
  for gmail.com / googlemail.com (``Jane.Doe+x@GoogleMail.com`` -> ``janedoe+x@googlemail.com``).
- ``hashed_phone_number``: SHA-256 of the E.164 form (``+8613800138000``).

Files: ``<kind>/part-00000.csv.gz``: gzip CSV, header
``hashed_email,hashed_phone_number[,ad_user_data,ad_personalization]``, one identifier a row (the
other cell blank), at most 100,000 rows a file (one request). The consent columns appear when any row
of the delivery carries consent; a blank consent cell means "not known" (leave the field unset).
``full`` = ``remove_all`` then ``create``, ``add`` = ``create``, ``remove`` = ``remove``: removals
are always their own files. A user whose ``ad_user_data`` is DENIED is never uploaded (Google's EU
user consent policy: without that consent the user must not be added); such rows are dropped as
``consent_denied``. Removals are kept whatever the consent.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import ClassVar

from dmp.delivery.profiles.base import (
    CONSENT_DENIED,
    Consent,
    IdRule,
    KeyRow,
    Layout,
    OutFile,
    Profile,
    gzip_bytes,
)
from dmp.transforms.ids import normalise_email_google, normalise_phone_reason

ROWS_PER_FILE = 100_000
ID_COLUMNS = ("hashed_email", "hashed_phone_number")
CONSENT_COLUMNS = ("ad_user_data", "ad_personalization")
OPERATIONS = {"full": ["remove_all", "create"], "add": ["create"], "remove": ["remove"]}
_NAME = re.compile(r"^(full|add|remove)/part-(\d{5})\.csv\.gz$")


@dataclass(frozen=True)
class GoogleProfile(Profile):
    """``rows_per_file`` identifiers per file: one ``AddOfflineUserDataJobOperations`` request."""

    name: ClassVar[str] = "google"
    rows_per_file: int = ROWS_PER_FILE

    def build_rules(self) -> list[IdRule]:
        return [
            IdRule(
                "email",
                "hashed_email",
                "sha256",
                normalise_email_google,
                "trimmed, lower-cased; dots removed before @gmail.com / @googlemail.com; +suffix kept",
            ),
            IdRule(
                "phone",
                "hashed_phone_number",
                "sha256",
                partial(normalise_phone_reason, phone_format="e164"),
                "E.164 (libphonenumber, default region CN)",
            ),
        ]

    @property
    def limits(self) -> dict[str, int]:
        return {"rows_per_file": self.rows_per_file}

    def _csv(self, rows: list[KeyRow], with_consent: bool) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(ID_COLUMNS + (CONSENT_COLUMNS if with_consent else ()))
        for row in rows:
            cells = [row.key if t == row.id_type else "" for t in self.rules]
            if with_consent:
                consent = row.consent or Consent()
                cells += [consent.ad_user_data or "", consent.ad_personalization or ""]
            writer.writerow(cells)
        return out.getvalue()

    def layout(self, parts: Mapping[str, Iterable[KeyRow]], *, session_seed: str = "") -> Layout:
        if self.rows_per_file < 1:
            raise ValueError(f"google: rows_per_file must be at least 1, got {self.rows_per_file}")
        checked, dropped = self.sorted_parts(parts)
        with_consent = any(r.consent is not None for rows in checked.values() for r in rows)
        files = []
        for kind, rows in checked.items():
            if kind != "remove":
                kept = [r for r in rows if r.consent is None or r.consent.ad_user_data != "DENIED"]
                dropped += Counter({CONSENT_DENIED: len(rows) - len(kept)})
                rows = kept
            for i in range(0, len(rows), self.rows_per_file):
                chunk = rows[i : i + self.rows_per_file]
                meta = {"operations": OPERATIONS[kind], "consent_columns": with_consent}
                name = f"{kind}/part-{i // self.rows_per_file:05d}.csv.gz"
                files.append(
                    OutFile(name, gzip_bytes(self._csv(chunk, with_consent)), len(chunk), kind, meta)
                )
        return Layout(self.name, tuple(files), dict(dropped), self.limits)

    def read_file(self, name: str, data: bytes) -> list[KeyRow]:
        if not _NAME.match(name):
            raise ValueError(f"{name}: not a google file name (<kind>/part-NNNNN.csv.gz)")
        try:
            text = gzip.decompress(data).decode("utf-8")
        except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
            raise ValueError(f"{name}: not a gzip UTF-8 file ({exc})") from None
        reader = csv.reader(io.StringIO(text))
        header = tuple(next(reader, []))
        if header not in (ID_COLUMNS, ID_COLUMNS + CONSENT_COLUMNS):
            raise ValueError(
                f"{name}: header must be {','.join(ID_COLUMNS)}[,{','.join(CONSENT_COLUMNS)}], got {header}"
            )
        rows = []
        for line, cells in enumerate(reader, start=2):
            if len(cells) != len(header):
                raise ValueError(f"{name}: line {line}: expected {len(header)} columns, got {len(cells)}")
            filled = [(t, v) for t, v in zip(self.rules, cells[:2], strict=True) if v]
            if len(filled) != 1:
                raise ValueError(f"{name}: line {line}: exactly one of {', '.join(ID_COLUMNS)} must be set")
            id_type, key = filled[0]
            self.rules[id_type].check_key(key, f"{name}: line {line}")
            try:
                known = len(cells) == 4 and (cells[2] or cells[3])
                consent = Consent(cells[2] or None, cells[3] or None) if known else None
            except ValueError as exc:
                raise ValueError(f"{name}: line {line}: {exc}") from None
            rows.append(KeyRow(id_type, key, consent))
        return rows
