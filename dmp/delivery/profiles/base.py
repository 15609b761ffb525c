"""What every delivery profile shares: id rules, prepared rows, the layout result, byte helpers.

A profile turns a channel's users into the files one ad platform accepts, in two pure steps:

1. :meth:`Profile.prepare`: one raw id -> the platform's key (normalised the platform's way, hashed
   as it documents) or a drop reason. A value that normalises to nothing is dropped and counted,
   never sent and never fatal.
2. :meth:`Profile.layout`: ``{kind: rows}`` (``full``, or ``add`` + ``remove``, as in
   :class:`dmp.delivery.plan.DeliveryPlan.parts`) -> the files, their platform metadata and the
   limits applied. :meth:`Profile.read_file` is its inverse, so ``dmp pull`` can rebuild the
   current set from any profile's files without our ``channels.yaml``.

No pyspark here (``dmp pull`` runs without Spark): everything is plain Python and the stdlib.
Same rows in, same bytes out: rows are sorted, gzip has ``mtime=0``, zip entries a fixed date.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import re
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

from dmp.transforms.ids import hash_value

KINDS = ("full", "add", "remove")
CONSENT_VALUES = ("GRANTED", "DENIED", "UNSPECIFIED")
PROFILE_VERSION = 1

# Drop reasons the layout itself adds (normalisation reasons come from dmp.transforms.ids).
DUPLICATE_KEY = "duplicate_key"  # two raw values normalised to one key (e.g. gmail dots)
CONSENT_DENIED = "consent_denied"  # Google: ad_user_data DENIED, the user may not be uploaded

Normaliser = Callable[[str | None], tuple[str | None, str | None]]
_HEX = {"md5": re.compile(r"^[0-9a-f]{32}$"), "sha256": re.compile(r"^[0-9a-f]{64}$")}


@dataclass(frozen=True)
class IdRule:
    """How one of our id types becomes a platform key."""

    id_type: str  # ours: oaid, idfa, imei, phone, email, user_id
    platform_id_type: str  # the platform's name, e.g. HASH_IMEI, PHONE_SHA256, EMAIL
    hash: str  # md5 | sha256 | none (none: our own user_id only)
    normalise: Normaliser
    rule: str  # one line for the manifest and docs/platforms.md: what normalise does

    def key(self, value: str) -> str:
        return hash_value(value, self.hash)

    def check_key(self, key: str, where: str) -> None:
        """Refuse a key that is not this rule's digest: a raw id must never reach a file."""
        pattern = _HEX.get(self.hash)
        if pattern is not None and not pattern.match(key):
            size = 32 if self.hash == "md5" else 64
            raise ValueError(
                f"{where}: {self.id_type} key must be {size} lower-case hex characters ({self.hash}), "
                f"got {len(key)} characters; pass keys from Profile.prepare, never raw ids"
            )


@dataclass(frozen=True)
class Consent:
    """Google's per-user consent (``ad_user_data``, ``ad_personalization``); None = not known."""

    ad_user_data: str | None = None
    ad_personalization: str | None = None

    def __post_init__(self) -> None:
        for name in ("ad_user_data", "ad_personalization"):
            value = getattr(self, name)
            if value is not None and value not in CONSENT_VALUES:
                raise ValueError(
                    f"consent.{name} must be one of {list(CONSENT_VALUES)} or None, got {value!r}"
                )


@dataclass(frozen=True, order=True)
class KeyRow:
    """One delivered key: our id type, the platform key and, when known, the user's consent."""

    id_type: str
    key: str
    consent: Consent | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Dropped:
    """A raw value that normalised to nothing: counted by reason, never sent."""

    id_type: str
    reason: str


@dataclass(frozen=True)
class OutFile:
    """One produced file: its name under the delivery folder (``kind/...``) and what it holds."""

    name: str
    data: bytes
    rows: int
    kind: str
    meta: Mapping[str, Any]  # what the platform's uploader needs: operation, id type, session, ...


@dataclass(frozen=True)
class Layout:
    """The files of one delivery for one profile, the rows dropped by reason and the limits used."""

    profile: str
    files: tuple[OutFile, ...]
    dropped: Mapping[str, int]
    limits: Mapping[str, int]
    warnings: tuple[str, ...] = ()

    def encoded(self) -> dict[str, tuple[bytes, int]]:
        """``{name: (bytes, rows)}``: the shape :func:`dmp.delivery.publish.publish` stores."""
        return {f.name: (f.data, f.rows) for f in self.files}

    def manifest_files(self) -> list[dict[str, Any]]:
        """Per file: the platform metadata to merge into the manifest's ``files`` entries."""
        return [{"path": f.name, "kind": f.kind, "rows": f.rows, **f.meta} for f in self.files]


@dataclass(frozen=True)
class Prepared:
    """What :meth:`Profile.prepare_all` returns: the keys and the drops by reason."""

    rows: list[KeyRow]
    dropped: Counter[str]


@dataclass(frozen=True)
class Profile:
    """A platform's id rules, limits and file layout.

    Subclasses are frozen dataclasses whose fields are the platform's settings and limits (so a
    test can split at a small limit: ``dataclasses.replace(profile, max_archive_bytes=600)``);
    they implement ``build_rules``, ``limits``, ``layout`` and ``read_file``.
    """

    name: ClassVar[str] = ""
    kinds: ClassVar[tuple[str, ...]] = KINDS  # the parts this platform can receive

    @cached_property
    def rules(self) -> dict[str, IdRule]:
        """Accepted id types in the platform's preference order, each with its rule."""
        return {r.id_type: r for r in self.build_rules()}

    def build_rules(self) -> list[IdRule]:
        raise NotImplementedError

    @property
    def id_types(self) -> tuple[str, ...]:
        return tuple(self.rules)

    @property
    def limits(self) -> dict[str, int]:
        return {}

    def rule(self, id_type: str, where: str = "") -> IdRule:
        try:
            return self.rules[id_type]
        except KeyError:
            raise ValueError(
                f"{where or self.name}: profile {self.name!r} does not accept id type {id_type!r}; "
                f"it accepts {list(self.rules)}"
            ) from None

    def prepare(self, id_type: str, raw: str | None) -> KeyRow | Dropped:
        """The platform key of one raw value, or why there is none."""
        rule = self.rule(id_type)
        value, reason = rule.normalise(raw)
        if value is None:
            return Dropped(id_type, reason or "empty_value")
        return KeyRow(id_type, rule.key(value))

    def prepare_all(self, pairs: Iterable[tuple[str, str | None]]) -> Prepared:
        """Keys of many ``(id_type, raw)`` pairs, de-duplicated and sorted, with drops counted."""
        rows: set[KeyRow] = set()
        dropped: Counter[str] = Counter()
        for id_type, raw in pairs:
            out = self.prepare(id_type, raw)
            if isinstance(out, Dropped):
                dropped[out.reason] += 1
            elif out in rows:
                dropped[DUPLICATE_KEY] += 1
            else:
                rows.add(out)
        return Prepared(sorted(rows), dropped)

    def check_channel(self, id_types: Sequence[str], sync: str) -> list[str]:
        """Why a channel cannot use this profile (empty when it can): for channels.yaml validation."""
        problems = [
            f"id type {t!r} is not accepted by format {self.name!r} (accepted: {list(self.rules)})"
            for t in id_types
            if t not in self.rules
        ]
        if sync == "incremental" and "add" not in self.kinds:
            problems.append(f"format {self.name!r} takes whole audiences only: use sync: full")
        return problems

    def settings(self) -> dict[str, Any]:
        """The dataclass fields as JSON values (tuples as lists): enough to rebuild the profile."""

        def plain(value: Any) -> Any:
            return [plain(v) for v in value] if isinstance(value, tuple) else value

        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def describe(self) -> dict[str, Any]:
        """The manifest's ``profile`` section: how every id type was normalised and hashed."""
        return {
            "name": self.name,
            "version": PROFILE_VERSION,
            "settings": self.settings(),
            "kinds": list(self.kinds),
            "id_types": [
                {"id_type": r.id_type, "platform_id_type": r.platform_id_type, "hash": r.hash, "rule": r.rule}
                for r in self.rules.values()
            ],
            "limits": self.limits,
        }

    def layout(self, parts: Mapping[str, Iterable[KeyRow]], *, session_seed: str = "") -> Layout:
        raise NotImplementedError

    def read_file(self, name: str, data: bytes) -> list[KeyRow]:
        raise NotImplementedError

    # ---------------------------------------------------------------- shared by the layouts

    def sorted_parts(
        self, parts: Mapping[str, Iterable[KeyRow]]
    ) -> tuple[dict[str, list[KeyRow]], Counter[str]]:
        """Each part's rows checked (kind, id type, key form), de-duplicated and sorted."""
        out: dict[str, list[KeyRow]] = {}
        dropped: Counter[str] = Counter()
        for kind, rows in parts.items():
            if kind not in self.kinds:
                raise ValueError(f"{self.name}: part {kind!r} is not one of {list(self.kinds)}")
            unique: dict[tuple[str, str], KeyRow] = {}
            for row in rows:
                self.rule(row.id_type, f"{self.name} {kind}").check_key(row.key, f"{self.name} {kind}")
                if (row.id_type, row.key) in unique:
                    dropped[DUPLICATE_KEY] += 1
                else:
                    unique[(row.id_type, row.key)] = row
            out[kind] = [unique[k] for k in sorted(unique)]
        return out, dropped


def by_id_type(rows: Iterable[KeyRow], order: Iterable[str]) -> list[tuple[str, list[KeyRow]]]:
    """Rows grouped by id type in the profile's order, empty groups left out."""
    groups: dict[str, list[KeyRow]] = {t: [] for t in order}
    for row in rows:
        groups[row.id_type].append(row)
    return [(t, g) for t, g in groups.items() if g]


def session_id(seed: str, kind: str) -> int:
    """A stable positive 60-bit id for one upload session: a rerun of a delivery reuses it."""
    return int(hashlib.sha256(f"{seed}|{kind}".encode()).hexdigest()[:15], 16)


def gzip_bytes(text: str) -> bytes:
    return gzip.compress(text.encode("utf-8"), compresslevel=6, mtime=0)


# Bytes a one-entry zip adds around its deflated data: local header (30) + central directory
# entry (46) + end record (22), each name twice, plus slack for deflate's block framing.
_ZIP_FIXED = 30 + 46 + 22 + 64


def zip_bound(text_bytes: int, entry_name: str) -> int:
    """Largest possible size of :func:`zip_one` over ``text_bytes`` bytes, whatever they contain.

    zlib's ``deflateBound`` for raw deflate (n + n>>12 + n>>14 + n>>25 + 7) plus the zip framing:
    splitting by this bound keeps every archive under the limit even for incompressible data.
    """
    n = text_bytes
    return n + (n >> 12) + (n >> 14) + (n >> 25) + 7 + _ZIP_FIXED + 2 * len(entry_name.encode("utf-8"))


def zip_one(entry_name: str, text: bytes) -> bytes:
    """A zip holding one deflated entry, byte-identical for identical input (fixed date and mode)."""
    info = zipfile.ZipInfo(entry_name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3
    info.external_attr = 0o644 << 16
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr(info, text, compresslevel=6)
    return buf.getvalue()


def unzip_one(name: str, data: bytes) -> tuple[str, bytes]:
    """(entry name, bytes) of a one-entry zip; a clear error naming the file otherwise."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.namelist()
            if len(entries) != 1:
                raise ValueError(f"{name}: expected a zip with one entry, found {len(entries)}")
            return entries[0], archive.read(entries[0])
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{name}: not a zip archive ({exc})") from None


def lines_of(name: str, text: bytes) -> list[str]:
    """The non-empty lines of a one-id-a-line file (UTF-8, ``\\n`` line ends)."""
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{name}: not UTF-8 ({exc})") from None
    return [line for line in decoded.split("\n") if line]


def balanced_chunks(rows: Sequence[KeyRow], limit: int) -> list[Sequence[KeyRow]]:
    """``ceil(n / limit)`` chunks of near-equal size (sizes differ by at most one).

    Used where a platform also has a minimum per upload: 10,000,001 ids with a 10,000,000 limit
    become 5,000,001 + 5,000,000, never 10,000,000 + 1.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    count = max(1, -(-len(rows) // limit))
    size, extra = divmod(len(rows), count)
    chunks, start = [], 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        chunks.append(rows[start:end])
        start = end
    return chunks


def key_rows(frame: Any) -> list[KeyRow]:
    """KeyRows of one plan part (a DataFrame with ``id_type``, ``user_key`` and, optionally, the
    consent columns ``ad_user_data`` / ``ad_personalization``; a missing or empty cell = not known).
    """

    def cell(value: Any) -> str | None:  # None, NaN and "" all mean "not known"
        return value if isinstance(value, str) and value else None

    has_consent = {"ad_user_data", "ad_personalization"} <= set(frame.columns)
    rows = []
    for rec in frame.to_dict("records"):
        consent = None
        if has_consent and (cell(rec["ad_user_data"]) or cell(rec["ad_personalization"])):
            consent = Consent(cell(rec["ad_user_data"]), cell(rec["ad_personalization"]))
        rows.append(KeyRow(str(rec["id_type"]), str(rec["user_key"]), consent))
    return rows
