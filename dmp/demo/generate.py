"""Deterministic demo data: behaviour logs, identities, suppression list and ground truth.

``generate(out, users, days, seed, start)`` writes the layout of the brief's cross-team contract::

    out/catalog.json                                   catalogue, personas, rates, lookalike hint
    out/events/event_date=YYYY-MM-DD/part-NNNNN.jsonl  one file per (date, chunk of users)
    out/identities/identities.jsonl                    user -> oaid/idfa/imei/phone/email (raw, noisy)
    out/suppression/opt_out.csv                        ~1% of users
    out/consents/consents.jsonl                        consent events per user and purpose (dmp.demo.consents)
    out/truth/users.csv                                persona and behaviour parameters per user
    out/truth/bad_records.json                         bad lines per kind (they are EXTRA lines)
    out/truth/campaigns.json, campaign_users.csv       the planted spring_revisit campaign
    out/truth/campaign_rerun_users.csv                 its rerun 14 days later (``uplift_types`` only)
    out/truth/summary.json                             everything in GenerateSummary

Where each part lives:

* :mod:`dmp.demo.personas`: personas and the per-user parameters drawn around them;
* :mod:`dmp.demo.simulate`: the normal behaviour process (views and their funnel, searches, coupons);
* :mod:`dmp.demo.campaign`: the planted campaign's potential outcomes and truth;
* :mod:`dmp.demo.formatting` and :mod:`dmp.demo.bad_records`: JSON lines, and the bad ones among them;
* :mod:`dmp.demo.identities`: raw identity lines;
* :mod:`dmp.demo.chunks`: one chunk of users end to end; this module runs the chunks and writes
  the shared files.

Valid events per user per day: ~0.69 at 30 days (0.70 at 15, 0.67 at 90, 0.66 at 365: new users
always show up on their first day, which weighs more in short histories; users who exist before
the period have no such day, so no date is a spike); ``expected_events_per_user_day(days)``
measures it on a fixed pilot and ``--events N`` uses it to pick the number of users. Rough mix:
views 57%, clicks 20%, searches 10%, cart_add 5%, favourites 2%, orders 2.7%, coupon_receive 2.2%,
coupon_redeem 0.9%, cart_remove 0.8%.

Output layout depends on ``chunk_users`` (one file per date and chunk) but not on ``workers``:
chunks are independent (own random streams, own files) and the shared files are written in chunk
order, so ``--workers 2`` gives the very same bytes as one process.

Determinism: numpy generators seeded from ``SeedSequence([seed, chunk, stream])`` with separate
streams for behaviour, campaign, bad records and identities, so e.g. ``--bad-rate`` never changes
the valid events. Same arguments -> byte-identical files.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from dmp.contracts.errors import DmpError
from dmp.contracts.vocab import EVENT_CHANNELS, EVENT_TYPES, ID_TYPES
from dmp.demo.bad_records import BAD_KINDS
from dmp.demo.campaign import (
    RERUN_AFTER_DAYS,
    TRUTH_HEADER,
    TRUTH_SUMS,
    TYPED_TRUTH_HEADER,
    CampaignTruth,
    campaign_run_date,
    write_campaign_truth,
)
from dmp.demo.catalog import BRANDS, CATEGORIES, Catalog, build_catalog
from dmp.demo.chunks import USERS_HEADER, ChunkJob, ChunkResult, run_chunk
from dmp.demo.consents import consent_lines
from dmp.demo.personas import LOOKALIKE_HINT, PERSONAS
from dmp.demo.simulate import expected_events_per_user_day as _pilot_events_per_user_day

__all__ = [
    "BAD_KINDS",
    "DEFAULT_BAD_RATE",
    "DEFAULT_DAYS",
    "DEFAULT_EPOCH_SHARE",
    "DEFAULT_PLANTED_PROB",
    "DEFAULT_START",
    "EVENT_TYPES",
    "GenerateSummary",
    "campaign_run_date",
    "default_chunk_users",
    "expected_events_per_user_day",
    "generate",
    "users_for_events",
]

DEFAULT_START = date(2026, 9, 1)
DEFAULT_DAYS = 30
DEFAULT_BAD_RATE = 0.002
DEFAULT_PLANTED_PROB = 0.06
DEFAULT_EPOCH_SHARE = 0.02

Progress = Callable[[int, int], None]


@dataclass
class GenerateSummary:
    out: str
    users: int
    days: int
    seed: int
    start: str
    end: str
    events_by_type: dict[str, int]
    events_total: int
    bad_records: dict[str, int]
    bad_total: int
    lines_total: int
    epoch_time_lines: int
    event_files: int
    files: dict[str, str]
    identities_by_type: dict[str, int]
    users_without_ids: int
    opted_out: int
    users_by_persona: dict[str, int]
    chunk_users: int
    campaign: CampaignTruth | None = None
    events_per_user_day: float = field(default=0.0)

    def to_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class _Totals:
    """The chunks' counts, added up in chunk order."""

    events_by_type: dict[str, int] = field(default_factory=lambda: dict.fromkeys(EVENT_TYPES, 0))
    bad_counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BAD_KINDS, 0))
    id_counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ID_TYPES, 0))
    personas: dict[str, int] = field(default_factory=lambda: dict.fromkeys((p.name for p in PERSONAS), 0))
    truth_sums: np.ndarray = field(default_factory=lambda: np.zeros(len(TRUTH_SUMS)))
    rerun_sums: np.ndarray | None = None
    no_ids: int = 0
    opted_out: int = 0
    event_files: int = 0
    lines: int = 0
    epoch_lines: int = 0

    def add(self, res: ChunkResult) -> None:
        self.truth_sums += res.truth_sums
        if res.rerun_truth_sums is not None:
            base = self.rerun_sums if self.rerun_sums is not None else np.zeros(len(TRUTH_SUMS))
            self.rerun_sums = base + res.rerun_truth_sums
        for total, part in (
            (self.events_by_type, res.events_by_type),
            (self.bad_counts, res.files.bad_counts),
            (self.id_counts, res.id_counts),
            (self.personas, res.personas),
        ):
            for k, v in part.items():
                total[k] += v
        self.no_ids += res.no_ids
        self.opted_out += res.opted_out
        self.event_files += res.files.event_files
        self.lines += res.files.lines
        self.epoch_lines += res.files.epoch_lines


def default_chunk_users(days: int) -> int:
    """About 600k user-days (~450k events) per chunk: memory is bounded by the chunk, not the total.

    Never below 5000 users, so long histories do not explode into tiny files (one file per date and
    chunk): 365 days x 5000 users is ~1.4M events in memory at once (~0.6 GB).
    """
    return int(min(20_000, max(5_000, 600_000 // max(days, 1))))


def expected_events_per_user_day(days: int = DEFAULT_DAYS) -> float:
    """Valid events per user per day, measured on a fixed pilot of 5000 users (about 0.7 at 30 days)."""
    return _pilot_events_per_user_day(days)


def users_for_events(events: int, days: int = DEFAULT_DAYS) -> int:
    """Number of users that gives about ``events`` valid events over ``days`` days."""
    return max(1, round(events / (days * expected_events_per_user_day(days))))


def _check_args(
    users: int, days: int, bad_rate: float, planted_prob: float, chunk_users: int | None, workers: int
) -> None:
    if users < 1:
        raise DmpError(f"--users: expected a positive number of users, got {users}")
    if days < 1:
        raise DmpError(f"--days: expected a positive number of days, got {days}")
    if not 0 <= bad_rate < 0.5:
        raise DmpError(f"--bad-rate: expected a share in [0, 0.5), got {bad_rate}")
    if not 0 <= planted_prob <= 1:
        raise DmpError(f"planted_prob: expected a probability in [0, 1], got {planted_prob}")
    if chunk_users is not None and chunk_users < 1:
        raise DmpError(f"--chunk-users: expected a positive number of users, got {chunk_users}")
    if workers < 1:
        raise DmpError(f"--workers: expected at least 1 process, got {workers}")


def generate(
    out: Path | str,
    users: int,
    days: int = DEFAULT_DAYS,
    seed: int = 0,
    start: date = DEFAULT_START,
    *,
    bad_rate: float = DEFAULT_BAD_RATE,
    campaign: bool = True,
    campaign_date: date | None = None,
    planted_prob: float = DEFAULT_PLANTED_PROB,
    epoch_share: float = DEFAULT_EPOCH_SHARE,
    chunk_users: int | None = None,
    workers: int = 1,
    progress: Progress | None = None,
    uplift_types: bool = False,
) -> GenerateSummary:
    """Write a demo dataset to ``out`` (see the module docstring) and return what was written.

    ``uplift_types``: the campaign's effect depends on the user's uplift type (sure things,
    persuadables, others: :mod:`dmp.demo.campaign`) and the campaign runs again 14 days later, so
    the default run date moves 14 days earlier (the rerun's window must fit too).
    """
    out = Path(out)
    _check_args(users, days, bad_rate, planted_prob, chunk_users, workers)
    rerun_days = RERUN_AFTER_DAYS if uplift_types and campaign else 0
    if rerun_days and days <= rerun_days:
        raise DmpError(f"--days: the campaign and its rerun need more than {rerun_days} days, got {days}")
    run_date = campaign_run_date(start, days - rerun_days, campaign_date) if campaign else None
    run_day = (run_date - start).days if run_date else -1
    chunk_users = chunk_users or default_chunk_users(days)
    catalog = build_catalog()
    _prepare_out(out)
    jobs = [
        ChunkJob(
            out=str(out), chunk=c, first=c * chunk_users + 1, last=min((c + 1) * chunk_users, users), days=days,
            seed=seed, start=start, bad_rate=bad_rate, run_day=run_day, planted_prob=planted_prob,
            epoch_share=epoch_share, uplift_types=uplift_types,
        )
        for c in range(math.ceil(users / chunk_users))
    ]  # fmt: skip
    totals = _write_chunks(out, jobs, workers, progress)
    _write_consents(out, users, start, days, seed)

    campaign_json = None
    if run_date is not None:
        campaign_json = write_campaign_truth(
            out, totals.truth_sums, run_date, planted_prob, totals.rerun_sums
        )
    else:
        (out / "truth" / "campaign_users.csv").unlink()
    if not rerun_days:
        (out / "truth" / "campaign_rerun_users.csv").unlink()
    bad_total = sum(totals.bad_counts.values())
    (out / "truth" / "bad_records.json").write_text(
        json.dumps({"total": bad_total, "by_kind": totals.bad_counts, "bad_rate": bad_rate}, indent=2) + "\n"
    )
    summary = _summary(out, users, days, seed, start, chunk_users, totals, campaign_json)
    _write_catalog(out, catalog, days, summary)
    _write_summary(out, summary)
    return summary


@contextmanager
def _chunk_results(jobs: list[ChunkJob], workers: int) -> Iterator[Iterator[ChunkResult]]:
    """The chunks' results in chunk order, from worker processes when asked for (same bytes)."""
    if workers > 1 and len(jobs) > 1:
        import multiprocessing

        # spawn, not fork: the parent may hold a JVM (Spark) and threads
        pool = multiprocessing.get_context("spawn").Pool(min(workers, len(jobs)))
        try:
            yield pool.imap(run_chunk, jobs)  # ordered: the shared files stay deterministic
        finally:
            pool.terminate()
    else:
        yield map(run_chunk, jobs)


def _write_chunks(out: Path, jobs: list[ChunkJob], workers: int, progress: Progress | None) -> _Totals:
    """Run every chunk (each writes its event files) and append their rows to the shared files."""
    totals = _Totals()
    with (
        open(out / "identities" / "identities.jsonl", "wb") as ids_f,
        open(out / "suppression" / "opt_out.csv", "wb") as opt_f,
        open(out / "truth" / "users.csv", "wb") as users_f,
        open(out / "truth" / "campaign_users.csv", "wb") as truth_f,
        open(out / "truth" / "campaign_rerun_users.csv", "wb") as rerun_f,
        _chunk_results(jobs, workers) as results,
    ):
        header = TYPED_TRUTH_HEADER if jobs and jobs[0].uplift_types else TRUTH_HEADER
        truth_f.write((",".join(header) + "\n").encode())
        rerun_f.write((",".join(header) + "\n").encode())
        opt_f.write(b"user_id\n")
        users_f.write((",".join(USERS_HEADER) + "\n").encode())
        for done, res in enumerate(results, start=1):
            users_f.write(res.users_csv.encode())
            opt_f.write(res.opt_out.encode())
            ids_f.write(res.identities.encode())
            truth_f.write(res.truth_csv.encode())
            rerun_f.write(res.rerun_truth_csv.encode())
            totals.add(res)
            if progress:
                progress(done, len(jobs))
    return totals


def _write_consents(out: Path, users: int, start: date, days: int, seed: int) -> None:
    """Every user's consent events (:mod:`dmp.demo.consents`), decided per user: chunk-independent."""
    user_ids = (f"u{n:07d}" for n in range(1, users + 1))
    (out / "consents" / "consents.jsonl").write_text(consent_lines(user_ids, start, days, seed))


def _summary(
    out: Path,
    users: int,
    days: int,
    seed: int,
    start: date,
    chunk_users: int,
    totals: _Totals,
    campaign_json: CampaignTruth | None,
) -> GenerateSummary:
    events_total = sum(totals.events_by_type.values())
    has_campaign = campaign_json is not None
    return GenerateSummary(
        out=str(out),
        users=users,
        days=days,
        seed=seed,
        start=start.isoformat(),
        end=(start + timedelta(days=days - 1)).isoformat(),
        events_by_type=totals.events_by_type,
        events_total=events_total,
        bad_records=totals.bad_counts,
        bad_total=sum(totals.bad_counts.values()),
        lines_total=totals.lines,
        epoch_time_lines=totals.epoch_lines,
        event_files=totals.event_files,
        files={
            "catalog": str(out / "catalog.json"),
            "events": str(out / "events"),
            "identities": str(out / "identities" / "identities.jsonl"),
            "opt_out": str(out / "suppression" / "opt_out.csv"),
            "consents": str(out / "consents" / "consents.jsonl"),
            "users": str(out / "truth" / "users.csv"),
            "bad_records": str(out / "truth" / "bad_records.json"),
            "campaigns": str(out / "truth" / "campaigns.json") if has_campaign else "",
            "campaign_users": str(out / "truth" / "campaign_users.csv") if has_campaign else "",
            "summary": str(out / "truth" / "summary.json"),
        },
        identities_by_type=totals.id_counts,
        users_without_ids=totals.no_ids,
        opted_out=totals.opted_out,
        users_by_persona=totals.personas,
        chunk_users=chunk_users,
        campaign=campaign_json,
        events_per_user_day=round(events_total / (users * days), 4),
    )


def _write_summary(out: Path, summary: GenerateSummary) -> None:
    """truth/summary.json, with paths relative to the output folder (independent of where it was written)."""
    doc = summary.to_json()
    doc["out"] = "."
    doc["files"] = {k: str(Path(v).relative_to(out)) if v else "" for k, v in summary.files.items()}
    (out / "truth" / "summary.json").write_text(json.dumps(doc, indent=2) + "\n")


_OWNED = ("events", "identities", "suppression", "consents", "truth", "catalog.json")


def _prepare_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise DmpError(f"--out {out}: expected a folder, found a file")
    present = [name for name in _OWNED if (out / name).exists()]
    if present and not (out / "catalog.json").exists():
        raise DmpError(
            f"--out {out}: already holds {', '.join(present)} but no catalog.json, so it does not look like "
            "a previous `dmp generate` output; refusing to overwrite it (choose an empty folder)"
        )
    for name in present:  # a previous generator output: replace it so stale files never linger
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    for sub in ("events", "identities", "suppression", "consents", "truth"):
        (out / sub).mkdir(parents=True, exist_ok=True)


def _write_catalog(out: Path, catalog: Catalog, days: int, summary: GenerateSummary) -> None:
    doc = catalog.to_json()
    doc["personas"] = [
        {
            "name": p.name,
            "share": p.share,
            "description": p.description,
            "category_weights": dict(zip(CATEGORIES, p.categories, strict=True)),
            "brand_weights": dict(zip(BRANDS, p.brands, strict=True)),
        }
        for p in PERSONAS
    ]
    doc["lookalike_hint"] = LOOKALIKE_HINT
    doc["channels"] = list(EVENT_CHANNELS)
    doc["event_types"] = list(EVENT_TYPES)
    doc["coupon_ids"] = "CP-<store_id>-<brand_id>-W<week of the generated period, 01..>"
    doc["events_per_user_day"] = {
        "expected": round(expected_events_per_user_day(days), 4),
        "observed": summary.events_per_user_day,
    }
    doc["generated"] = {
        "start": summary.start,
        "end": summary.end,
        "users": summary.users,
        "seed": summary.seed,
    }
    (out / "catalog.json").write_text(json.dumps(doc, indent=2) + "\n")
