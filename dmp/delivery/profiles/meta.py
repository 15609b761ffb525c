"""``format: meta``: Meta (Facebook / Instagram) Customer File Custom Audiences, Marketing API.

Sources (see docs/platforms.md): Marketing API "Customer File Custom Audiences" (hash with
SHA-256; up to 10,000 records a request; the ``session`` object for uploads split into batches),
the ``/{custom_audience_id}/users`` and ``/usersreplace`` references (``payload.schema`` as a key
list, ``payload.data`` rows with a blank for an unknown key) and the Business Help Center customer
list format (phone with its country code).

- ``EMAIL``: SHA-256 of the address trimmed + lower-cased.
- ``PHONE``: SHA-256 of the digits with the country code and no ``+`` or leading zeros
  (``+86 138-0013-8000`` -> ``8613800138000``), parsed with libphonenumber, region CN.

Files: ``<kind>/batch-00001.json``, each the exact JSON body of one API request::

    {"payload": {"schema": ["EMAIL", "PHONE"], "data": [["<sha256>", ""], ["", "<sha256>"]]},
     "session": {"session_id": 123, "batch_seq": 1, "last_batch_flag": false,
                 "estimated_num_total": 25000}}

One session per part: ``full`` -> ``POST /{audience_id}/usersreplace`` (the whole session replaces
the audience, so every batch must be in it: hence one fixed multi-key schema rather than a session
per id type), ``add`` -> ``POST /{audience_id}/users``, ``remove`` -> ``DELETE /{audience_id}/users``.
``batch_seq`` counts from 1 in file order, ``last_batch_flag`` marks the last file, and
``session_id`` is derived from the delivery folder and the part, so a re-upload of the same delivery
resumes the same session instead of starting a second one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

from dmp.delivery.profiles.base import IdRule, KeyRow, Layout, OutFile, Profile, session_id
from dmp.transforms.ids import normalise_phone_digits, normalise_value

ROWS_PER_BATCH = 10_000
ENDPOINT = {
    "full": ("POST", "usersreplace"),
    "add": ("POST", "users"),
    "remove": ("DELETE", "users"),
}
_NAME = re.compile(r"^(full|add|remove)/batch-(\d{5})\.json$")


@dataclass(frozen=True)
class MetaProfile(Profile):
    """``rows_per_batch`` rows per request body (Meta's maximum is 10,000)."""

    name: ClassVar[str] = "meta"
    rows_per_batch: int = ROWS_PER_BATCH

    def build_rules(self) -> list[IdRule]:
        return [
            IdRule("email", "EMAIL", "sha256", partial(normalise_value, "email"), "trimmed, lower-cased"),
            IdRule(
                "phone",
                "PHONE",
                "sha256",
                normalise_phone_digits,
                "country code + number as digits, no '+' (libphonenumber, default region CN)",
            ),
        ]

    @property
    def limits(self) -> dict[str, int]:
        return {"rows_per_batch": self.rows_per_batch}

    @property
    def schema(self) -> list[str]:
        return [r.platform_id_type for r in self.rules.values()]

    def _cells(self, row: KeyRow) -> list[str]:
        return [row.key if t == row.id_type else "" for t in self.rules]

    def _session(self, kind: str, rows: list[KeyRow], seed: str) -> list[OutFile]:
        if self.rows_per_batch < 1 or self.rows_per_batch > ROWS_PER_BATCH:
            raise ValueError(f"meta: rows_per_batch must be 1..{ROWS_PER_BATCH}, got {self.rows_per_batch}")
        method, edge = ENDPOINT[kind]
        sid = session_id(seed, kind)
        batches = [rows[i : i + self.rows_per_batch] for i in range(0, len(rows), self.rows_per_batch)]
        files = []
        for seq, batch in enumerate(batches, start=1):
            session = {
                "session_id": sid,
                "batch_seq": seq,
                "last_batch_flag": seq == len(batches),
                "estimated_num_total": len(rows),
            }
            body: dict[str, Any] = {
                "payload": {"schema": self.schema, "data": [self._cells(r) for r in batch]},
                "session": session,
            }
            data = (json.dumps(body, sort_keys=True, separators=(",", ":")) + "\n").encode("utf-8")
            meta = {"method": method, "edge": edge, "session": session}
            files.append(OutFile(f"{kind}/batch-{seq:05d}.json", data, len(batch), kind, meta))
        return files

    def layout(self, parts: Mapping[str, Iterable[KeyRow]], *, session_seed: str = "") -> Layout:
        """``session_seed``: the delivery folder (``channel/segment/run_date``), for stable session ids."""
        checked, dropped = self.sorted_parts(parts)
        files = [f for kind, rows in checked.items() for f in self._session(kind, rows, session_seed)]
        return Layout(self.name, tuple(files), dict(dropped), self.limits)

    def read_file(self, name: str, data: bytes) -> list[KeyRow]:
        if not _NAME.match(name):
            raise ValueError(f"{name}: not a meta file name (<kind>/batch-NNNNN.json)")
        try:
            payload = json.loads(data)["payload"]
            schema, cells = payload["schema"], payload["data"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"{name}: not a Meta request body with payload.schema and payload.data ({exc})"
            ) from None
        if schema != self.schema:
            raise ValueError(f"{name}: payload.schema must be {self.schema}, got {schema}")
        rows = []
        for i, cell in enumerate(cells):
            filled = [(t, v) for t, v in zip(self.rules, cell, strict=False) if v]
            if len(cell) != len(schema) or len(filled) != 1:
                raise ValueError(f"{name}: payload.data[{i}] must hold one key among {len(schema)} cells")
            id_type, key = filled[0]
            self.rules[id_type].check_key(key, f"{name}: payload.data[{i}]")
            rows.append(KeyRow(id_type, key))
        return rows
