"""Scrub the delivered files of erased accounts (issue 18: "every delivered file"); the I/O edge.

``dmp forget`` deletes the accounts from the lake; files delivered before the request stay on the
channels' destinations (coupon_center's hold raw user ids). :func:`scrub_deliveries`:

1. reads the tombstone hashes: ``ops/erased_users.user_hash`` and ``ops/erased_identifiers``
   ``value_hash`` of kind ``delivery_key`` (every key a channel may hold for an erased identifier,
   :func:`dmp.transforms.erasure.delivery_keys`). A delivered ``user_key`` is erased when its
   :func:`~dmp.transforms.erasure.erasure_hash` is one of them: the same rule
   :func:`dmp.steps.forget_status.clean_delivery_state` applies to ``ops/delivery_state``, so an
   identifier an erased account shared with a kept one goes from the old files too (the kept
   account gets it again with the next delivery: full files are rebuilt from the lake, and an
   incremental channel's state no longer holds it once vacuumed, so its next diff adds it);
2. walks every destination of ``channels.yaml`` (the configured channel names and any other
   channel-named folder there, e.g. of a channel since removed), every ``<channel>/<segment>/
   <run_date>/`` folder with ``_SUCCESS``, each segment's days oldest first;
3. rewrites a folder only when :func:`dmp.delivery.scrub.scrub_folder` changes it, through
   :func:`dmp.delivery.publish.publish` (``_SUCCESS`` removed first, data files, ``manifest.json``,
   ``_SUCCESS`` last; unchanged data files are not re-uploaded). Later manifests of the chain get
   the new ``previous`` sha256 (module docstring of :mod:`dmp.delivery.scrub`), so ``dmp pull``
   still verifies every folder, and a client holding an old version rebuilds from the full one.

Idempotent: a second run finds nothing erased and every ``previous`` current, and writes nothing.
Folders without ``_SUCCESS`` (a delivery in progress or interrupted) are not touched and are listed
in the report; so is a folder whose files do not match its manifest, and the run then raises
:class:`ScrubFailed` after doing every other folder. Nothing is written to the lake:
``ops/deliveries`` keeps the sha256 of the files as they were delivered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from dmp.contracts import tables
from dmp.contracts.channels import CHANNEL_NAME_PATTERN, ChannelsConfig
from dmp.contracts.errors import DmpError
from dmp.contracts.specs import NAME_PATTERN
from dmp.delivery.layout import delivery_folder, manifest_key, segment_folder, success_key
from dmp.delivery.manifest import parse_manifest
from dmp.delivery.publish import AfterPut, publish
from dmp.delivery.pull import iso_day
from dmp.delivery.scrub import IsErased, scrub_folder, superseded
from dmp.delivery.storage import ObjectStore, open_store
from dmp.spark import lake as lk
from dmp.transforms.erasure import DELIVERY_KEY, erasure_hash


@dataclass(frozen=True)
class FolderScrub:
    """One complete delivery folder looked at."""

    url: str  # <destination>/<channel>/<segment>/<run_date>
    rows_removed: dict[str, int]  # data file path -> rows removed by this run
    rewritten: bool  # False: nothing erased and ``previous`` current; not a byte written

    @property
    def rows(self) -> int:
        return sum(self.rows_removed.values())


@dataclass
class ScrubReport:
    hashes: int  # tombstone hashes matched against
    folders: list[FolderScrub] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)  # folders without _SUCCESS: not touched
    failed: list[str] = field(default_factory=list)  # one message per folder that could not be scrubbed

    @property
    def rewritten(self) -> list[FolderScrub]:
        return [f for f in self.folders if f.rewritten]

    @property
    def rows_removed(self) -> int:
        return sum(f.rows for f in self.folders)


class ScrubFailed(DmpError):
    """Some folders could not be scrubbed (the others were); ``report`` says which."""

    def __init__(self, report: ScrubReport) -> None:
        super().__init__(f"{len(report.failed)} delivery folder(s) not scrubbed: " + "; ".join(report.failed))
        self.report = report


def erased_key_hashes(spark: SparkSession, lake: str) -> frozenset[str]:
    """The erasure hashes a delivered ``user_key`` is checked against (module docstring, step 1)."""
    hashes: set[str] = set()
    if lk.table_exists(spark, lake, tables.ERASED_USERS):
        users = lk.read_table(spark, lake, tables.ERASED_USERS).select("user_hash")
        hashes |= {r["user_hash"] for r in users.collect()}
    if lk.table_exists(spark, lake, tables.ERASED_IDENTIFIERS):
        ids = lk.read_table(spark, lake, tables.ERASED_IDENTIFIERS)
        rows = ids.filter(F.col("kind") == DELIVERY_KEY).select("value_hash").collect()
        hashes |= {r["value_hash"] for r in rows}
    return frozenset(hashes)


def tombstoned(hashes: frozenset[str]) -> IsErased:
    """``is_erased(user_key)`` for :func:`dmp.delivery.scrub.scrub_folder`."""
    return lambda key: erasure_hash(key) in hashes


def _channel_names(store: ObjectStore, configured: list[str]) -> list[str]:
    found = [d for d in store.list_dirs("") if re.fullmatch(CHANNEL_NAME_PATTERN, d)]
    return sorted(set(found) | set(configured))


def _scrub_segment(
    store: ObjectStore,
    channel: str,
    segment: str,
    is_erased: IsErased,
    now: datetime,
    report: ScrubReport,
    after_put: AfterPut | None,
) -> None:
    renames: dict[str, str] = {}  # sha256 of replaced manifests -> current sha256, oldest day first
    for day in sorted(d for d in store.list_dirs(segment_folder(channel, segment)) if iso_day(d)):
        folder = delivery_folder(channel, segment, day)
        url = f"{store.url}/{folder}"
        if not store.exists(success_key(folder)):
            report.incomplete.append(url)
            continue
        try:
            data = store.get(manifest_key(folder))
            manifest = parse_manifest(data, f"{url}/manifest.json")
            found = (manifest.get("channel"), manifest.get("segment"), manifest.get("run_date"))
            if found != (channel, segment, day):
                raise DmpError(f"{url}/manifest.json: is for {found}, not for the folder it sits in")
            files = {str(f["path"]): store.get(f"{folder}/{f['path']}") for f in manifest.get("files") or []}
            result = scrub_folder(data, files, is_erased, now=now, renames=renames, where=url)
        except DmpError as exc:
            report.failed.append(str(exc))
            continue
        if result.changed:
            publish(store, folder, result.files, result.manifest_data, after_put)
        renames.update(superseded(result.manifest, result.manifest_sha256))
        report.folders.append(FolderScrub(url, result.rows_removed, result.changed))


def scrub_deliveries(
    spark: SparkSession,
    lake: str,
    channels: ChannelsConfig,
    *,
    now: datetime | None = None,
    after_put: AfterPut | None = None,
) -> ScrubReport:
    """Rewrite every delivered folder that holds an erased account's rows (module docstring).

    Raises :class:`ScrubFailed` (with the report) after the walk when a folder could not be read
    or verified; ``after_put`` is passed to :func:`publish` (tests interrupt there).
    """
    stamp = (now or datetime.now(UTC)).astimezone(UTC)
    hashes = erased_key_hashes(spark, lake)
    report = ScrubReport(len(hashes))
    if not hashes:
        return report
    is_erased = tombstoned(hashes)
    by_destination: dict[str, list[str]] = {}
    for name, channel in sorted(channels.channels.items()):
        by_destination.setdefault(channel.destination, []).append(name)
    for destination, configured in sorted(by_destination.items()):
        store = open_store(destination)
        for channel in _channel_names(store, configured):
            for segment in store.list_dirs(channel):
                if re.fullmatch(NAME_PATTERN, segment):
                    _scrub_segment(store, channel, segment, is_erased, stamp, report, after_put)
    if report.failed:
        raise ScrubFailed(report)
    return report
