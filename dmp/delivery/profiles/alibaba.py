"""``format: alibaba``: Alibaba Quick Audience pushes to Damengpan (达摩盘, Alimama's DMP).

Sources (see docs/platforms.md): Alibaba Cloud Quick Audience "Damengpan Push Overview" / "达摩盘推送
概述" (six id types: phone, email, IMEI, IDFA, Taobao ID, Taobao nickname; MD5 or SHA256, and
SHA256 only for phone numbers), "Create Damengpan Push Tasks" (more than 2,000 and fewer than 50
million users per push) and the V3.3.23 release note (OAID cannot be pushed to Damengpan).

- ``PHONE_SHA256`` (default) or ``PHONE_MD5``: of the 11-digit mainland number (``13800138000``);
  a number outside +86 is dropped as ``phone_not_cn``.
- ``EMAIL_MD5``: MD5 of the address trimmed + lower-cased (SHA256 is refused for non-phones).
- ``IMEI_MD5``: MD5 of the IMEI trimmed, lower-cased, 14/15 characters ``0-9a-f``.
- ``IDFA_MD5``: MD5 of the IDFA upper-cased with dashes (the form Tencent's published example uses;
  Alibaba publishes none).

A push is a whole audience of one id type: there is no incremental add/remove, so a channel with
``format: alibaba`` must be ``sync: full``. Files: ``full/<TYPE>.push-00000.zip``, a zip of one
``.txt`` with one key a line. At most ``max_ids_per_push`` keys a push (10 million by default, well
under the published 50 million); more are split into near-equal pushes so none falls under the
2,000 minimum needlessly. A push below the minimum is still written, with a warning: the pack's
``min_size`` is the place to refuse small audiences, not the file writer.
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
    balanced_chunks,
    by_id_type,
    lines_of,
    unzip_one,
    zip_one,
)
from dmp.transforms.ids import normalise_imei_strict, normalise_phone_reason, normalise_value

MAX_IDS_PER_PUSH = 10_000_000
MIN_IDS_PER_PUSH = 2_000
_NAME = re.compile(r"^full/([A-Z0-9_]+)\.push-(\d{5})\.zip$")


@dataclass(frozen=True)
class AlibabaProfile(Profile):
    """``phone_hash`` sha256 (default) or md5; ``max_ids_per_push`` keys per push."""

    name: ClassVar[str] = "alibaba"
    kinds: ClassVar[tuple[str, ...]] = ("full",)
    phone_hash: str = "sha256"
    max_ids_per_push: int = MAX_IDS_PER_PUSH
    min_ids_per_push: int = MIN_IDS_PER_PUSH

    def build_rules(self) -> list[IdRule]:
        if self.phone_hash not in ("md5", "sha256"):
            raise ValueError(f"alibaba: phone_hash must be md5 or sha256, got {self.phone_hash!r}")
        return [
            IdRule(
                "phone",
                f"PHONE_{self.phone_hash.upper()}",
                self.phone_hash,
                partial(normalise_phone_reason, phone_format="cn11"),
                "11-digit mainland number (libphonenumber, region CN); non-+86 dropped",
            ),
            IdRule("email", "EMAIL_MD5", "md5", partial(normalise_value, "email"), "trimmed, lower-cased"),
            IdRule("imei", "IMEI_MD5", "md5", normalise_imei_strict, "trimmed, lower-cased, 14-15 of 0-9a-f"),
            IdRule(
                "idfa",
                "IDFA_MD5",
                "md5",
                partial(normalise_value, "idfa"),
                "trimmed, upper-cased, 8-4-4-4-12 with dashes",
            ),
        ]

    @property
    def limits(self) -> dict[str, int]:
        return {"max_ids_per_push": self.max_ids_per_push, "min_ids_per_push": self.min_ids_per_push}

    def layout(self, parts: Mapping[str, Iterable[KeyRow]], *, session_seed: str = "") -> Layout:
        checked, dropped = self.sorted_parts(parts)
        files: list[OutFile] = []
        warnings: list[str] = []
        for id_type, rows in by_id_type(checked.get("full", []), self.rules):
            rule = self.rules[id_type]
            pushes = balanced_chunks(rows, self.max_ids_per_push)
            for i, push in enumerate(pushes):
                stem = f"{rule.platform_id_type}.push-{i:05d}"
                text = "".join(r.key + "\n" for r in push).encode("ascii")
                meta = {
                    "id_type": id_type,
                    "push_id_type": id_type.upper(),
                    "encryption": rule.hash.upper(),
                    "push": i + 1,
                    "pushes": len(pushes),
                    "entry": f"{stem}.txt",
                }
                files.append(
                    OutFile(f"full/{stem}.zip", zip_one(f"{stem}.txt", text), len(push), "full", meta)
                )
                if len(push) < self.min_ids_per_push:
                    warnings.append(
                        f"full/{stem}.zip: {len(push)} ids, below Damengpan's minimum of "
                        f"{self.min_ids_per_push} per push; the push will be refused"
                    )
        return Layout(self.name, tuple(files), dict(dropped), self.limits, tuple(warnings))

    def read_file(self, name: str, data: bytes) -> list[KeyRow]:
        match = _NAME.match(name)
        if not match:
            raise ValueError(f"{name}: not an alibaba file name (full/<TYPE>.push-NNNNN.zip)")
        by_platform = {r.platform_id_type: r for r in self.rules.values()}
        rule = by_platform.get(match.group(1))
        if rule is None:
            raise ValueError(f"{name}: id type {match.group(1)} is not one of {sorted(by_platform)}")
        _entry, text = unzip_one(name, data)
        rows = []
        for key in lines_of(name, text):
            rule.check_key(key, name)
            rows.append(KeyRow(rule.id_type, key))
        return rows
