"""``format: tencent``: Tencent Ads (广点通 / DataNexus) customer-file audiences (客户文件人群).

Sources (see docs/platforms.md): developers.e.qq.com "客户文件人群" (id types and their forms,
with the two known answers below) and ``custom_audience_files/add`` (one ``user_id_type`` per file,
txt/csv one id a line, zipped, at most 100M per zip, ``operation_type`` APPEND or REDUCE).

- ``HASH_IMEI``: MD5 of the IMEI as 14/15 characters ``0-9a-f`` (lower-case):
  ``a000002c9060f7`` -> ``f2d5a650733ca8c27d502b1c08da14e5``.
- ``HASH_IDFA``: MD5 of the IDFA upper-case with its dashes:
  ``FF1999CD-7177-4937-A474-74937A102630`` -> ``2c010ed96aef2fc34983e1e7e9176b7e`` (the
  undashed 32-character form hashes to something else).
- ``HASH_OAID``: MD5 of the OAID trimmed + lower-cased. Tencent also takes plain ``OAID``; we never
  send a raw device id, so only the hashed type is used.
- ``HASH_MOBILE_PHONE`` (MD5) or ``SHA256_MOBILE_PHONE`` (SHA-256) of the 11-digit mainland
  number (``13800138000``); a number outside +86 is dropped as ``phone_not_cn``.

Files: ``<kind>/<USER_ID_TYPE>.<APPEND|REDUCE>.part-00000.zip``, each a zip of one
``<same name>.txt`` with one key and ``\\n`` per line. ``full`` and ``add`` upload with APPEND
(``full`` into a new or emptied audience), ``remove`` with REDUCE. An archive is closed before
its worst-case size (:func:`base.zip_bound`) would pass ``max_archive_bytes``, so it is under the
limit whatever the data; a 100,000,000-byte archive still holds ~3 million MD5 keys.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import ClassVar

from dmp.delivery.profiles.base import (
    IdRule,
    KeyRow,
    Layout,
    OutFile,
    Profile,
    by_id_type,
    lines_of,
    unzip_one,
    zip_bound,
    zip_one,
)
from dmp.transforms.ids import normalise_imei_strict, normalise_phone_reason, normalise_value

# "压缩后的 zip 包不超过 100M": read as 10^8 bytes, the smaller of 100 MB and 100 MiB.
MAX_ARCHIVE_BYTES = 100_000_000
OPERATION = {"full": "APPEND", "add": "APPEND", "remove": "REDUCE"}
PHONE_TYPES = {"md5": "HASH_MOBILE_PHONE", "sha256": "SHA256_MOBILE_PHONE"}
_NAME = re.compile(r"^(full|add|remove)/([A-Z0-9_]+)\.(APPEND|REDUCE)\.part-(\d{5})\.zip$")


def _cn11(raw: str | None) -> tuple[str | None, str | None]:
    return normalise_phone_reason(raw, "cn11")


@dataclass(frozen=True)
class TencentProfile(Profile):
    """``phone_hash`` picks HASH_MOBILE_PHONE (md5) or SHA256_MOBILE_PHONE (sha256)."""

    name: ClassVar[str] = "tencent"
    phone_hash: str = "md5"
    max_archive_bytes: int = MAX_ARCHIVE_BYTES

    def build_rules(self) -> list[IdRule]:
        if self.phone_hash not in PHONE_TYPES:
            raise ValueError(
                f"tencent: phone_hash must be one of {list(PHONE_TYPES)}, got {self.phone_hash!r}"
            )
        return [
            IdRule(
                "imei", "HASH_IMEI", "md5", normalise_imei_strict, "trimmed, lower-cased, 14-15 of 0-9a-f"
            ),
            IdRule(
                "idfa",
                "HASH_IDFA",
                "md5",
                partial(normalise_value, "idfa"),
                "trimmed, upper-cased, 8-4-4-4-12 with dashes",
            ),
            IdRule("oaid", "HASH_OAID", "md5", partial(normalise_value, "oaid"), "trimmed, lower-cased"),
            IdRule(
                "phone",
                PHONE_TYPES[self.phone_hash],
                self.phone_hash,
                _cn11,
                "11-digit mainland number (libphonenumber, region CN); non-+86 dropped",
            ),
        ]

    @property
    def limits(self) -> dict[str, int]:
        return {"max_archive_bytes": self.max_archive_bytes}

    def _archives(self, kind: str, id_type: str, rows: list[KeyRow]) -> list[OutFile]:
        """Consecutive sorted keys, a new archive whenever the next line could overflow the limit."""
        platform_type, operation = self.rules[id_type].platform_id_type, OPERATION[kind]
        files: list[OutFile] = []
        pending: list[str] = []
        size = 0

        def entry() -> str:
            return f"{platform_type}.{operation}.part-{len(files):05d}.txt"

        def close() -> None:
            text = "".join(pending).encode("ascii")
            stem = entry()
            meta = {
                "id_type": id_type,
                "user_id_type": platform_type,
                "operation_type": operation,
                "entry": stem,
            }
            files.append(
                OutFile(f"{kind}/{stem[: -len('.txt')]}.zip", zip_one(stem, text), len(pending), kind, meta)
            )

        for row in rows:
            line = row.key + "\n"
            if zip_bound(size + len(line), entry()) > self.max_archive_bytes:
                if not pending:
                    raise ValueError(
                        f"tencent: max_archive_bytes={self.max_archive_bytes} cannot hold even one "
                        f"{platform_type} key ({zip_bound(len(line), entry())} bytes needed)"
                    )
                close()
                pending, size = [], 0
            pending.append(line)
            size += len(line)
        if pending:
            close()
        return files

    def layout(self, parts: Mapping[str, Iterable[KeyRow]], *, session_seed: str = "") -> Layout:
        """One id type per archive; an empty part (nothing to remove today) writes no file."""
        checked, dropped = self.sorted_parts(parts)
        files = [
            archive
            for kind, rows in checked.items()
            for id_type, group in by_id_type(rows, self.rules)
            for archive in self._archives(kind, id_type, group)
        ]
        return Layout(self.name, tuple(files), dict(dropped), self.limits)

    def read_file(self, name: str, data: bytes) -> list[KeyRow]:
        match = _NAME.match(name)
        if not match:
            raise ValueError(
                f"{name}: not a tencent file name (<kind>/<USER_ID_TYPE>.<APPEND|REDUCE>.part-NNNNN.zip)"
            )
        kind, platform_type, operation, _index = match.groups()
        by_platform = {r.platform_id_type: r for r in self.rules.values()}
        if platform_type not in by_platform:
            raise ValueError(f"{name}: user_id_type {platform_type} is not one of {sorted(by_platform)}")
        if operation != OPERATION[kind]:
            raise ValueError(f"{name}: a {kind} file must be {OPERATION[kind]}, got {operation}")
        _entry, text = unzip_one(name, data)
        rule = by_platform[platform_type]
        rows = []
        for key in lines_of(name, text):
            rule.check_key(key, name)
            rows.append(KeyRow(rule.id_type, key))
        return rows
