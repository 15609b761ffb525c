"""One chunk of demo users, simulated and written on its own (in this process or a worker).

A chunk is independent: its own random streams (:func:`dmp.demo.sampling.stream`), its own event
files (one per date: ``events/event_date=D/part-<chunk>.jsonl``), and a :class:`ChunkResult`
carrying the text of its share of the shared files (users, opt-outs, identities, campaign truth),
which :func:`dmp.demo.generate.generate` appends in chunk order. So the output does not depend on
how many workers ran the chunks.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np

from dmp.contracts.vocab import EVENT_TYPES
from dmp.demo.bad_records import BAD_KINDS, BAD_SHARES, bad_lines
from dmp.demo.campaign import RERUN_AFTER_DAYS, TruthRow, plant_campaign, truth_sums
from dmp.demo.catalog import BRANDS, CATEGORIES, build_catalog
from dmp.demo.formatting import EPOCH_MILLIS, EPOCH_SECONDS, ISO_TIME, EventFormatter
from dmp.demo.identities import identities
from dmp.demo.model import PRICE_LEVELS, CatalogModel
from dmp.demo.personas import PERSONAS, UserParams, draw_users
from dmp.demo.sampling import (
    BAD_RECORDS_STREAM,
    BEHAVIOUR_STREAM,
    CAMPAIGN_STREAM,
    IDENTITIES_STREAM,
    OPT_OUT_STREAM,
    SECONDS_PER_DAY,
    TIME_FORMAT_STREAM,
    n_weeks,
    stream,
)
from dmp.demo.simulate import EVENT_RANK, ORDER, Events, simulate

USERS_HEADER = (
    "user_id", "persona", "platform", "price_level", "join_date", "churn_date", "active_share",
    "views_per_active_day", "cart_rate", "order_rate", "coupon_sensitivity", "top_category_id",
    "top_brand_id", "n_events", "n_orders", "opted_out",
)  # fmt: skip
OPT_OUT_SHARE = 0.01


@dataclass(frozen=True)
class ChunkJob:
    out: str
    chunk: int
    first: int  # first and last user number (inclusive)
    last: int
    days: int
    seed: int
    start: date
    bad_rate: float
    run_day: int  # -1: no campaign
    planted_prob: float
    epoch_share: float
    uplift_types: bool = False  # effects by uplift type, and the campaign's rerun (dmp.demo.campaign)


@dataclass
class FileStats:
    """What the event files of one chunk hold besides the valid events."""

    bad_counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BAD_KINDS, 0))
    event_files: int = 0
    lines: int = 0
    epoch_lines: int = 0


@dataclass
class ChunkResult:
    users_csv: str
    opt_out: str
    identities: str
    truth_csv: str
    truth_sums: np.ndarray  # campaign.TRUTH_SUMS, summed over the chunk's eligible users
    events_by_type: dict[str, int]
    id_counts: dict[str, int]
    personas: dict[str, int]
    no_ids: int
    opted_out: int
    files: FileStats
    rerun_truth_csv: str = ""  # the campaign's rerun (uplift types only)
    rerun_truth_sums: np.ndarray | None = None


@lru_cache(maxsize=4)
def _tables(start: date, weeks: int) -> tuple[CatalogModel, EventFormatter]:
    """Catalogue lookups and text fragments, built once per process."""
    model = CatalogModel(build_catalog())
    return model, EventFormatter(model, start, weeks)


def run_chunk(job: ChunkJob) -> ChunkResult:
    """Simulate one chunk of users over all days and write its event files (one per date)."""
    model, fmt = _tables(job.start, n_weeks(job.days))
    nums = np.arange(job.first, job.last + 1)
    user_ids = [f"u{x:07d}" for x in nums.tolist()]
    users, ev, truths = _chunk_events(job, model, user_ids)
    truth = truths[0] if truths else []
    opt = stream(job.seed, job.chunk, OPT_OUT_STREAM).random(len(nums)) < OPT_OUT_SHARE
    users_csv, personas = _users_csv(job, users, ev, user_ids, opt)
    id_lines, id_counts, no_ids = identities(
        stream(job.seed, job.chunk, IDENTITIES_STREAM), nums, users.platform, job.seed
    )
    events_by_type = dict.fromkeys(EVENT_TYPES, 0)
    for et, c in zip(*np.unique(ev["et"], return_counts=True), strict=True):
        events_by_type[EVENT_TYPES[et]] += int(c)
    return ChunkResult(
        users_csv=users_csv,
        opt_out="".join(f"{user_ids[i]}\n" for i in np.nonzero(opt)[0]),
        identities="".join(line + "\n" for line in id_lines),
        truth_csv="".join(",".join(map(str, row)) + "\n" for row in truth),
        truth_sums=truth_sums(truth),
        events_by_type=events_by_type,
        id_counts=id_counts,
        personas=personas,
        no_ids=no_ids,
        opted_out=int(opt.sum()),
        files=_write_event_files(job, ev, fmt, user_ids),
        rerun_truth_csv="".join(",".join(map(str, row)) + "\n" for row in truths[1])
        if len(truths) > 1
        else "",
        rerun_truth_sums=truth_sums(truths[1]) if len(truths) > 1 else None,
    )


def _chunk_events(
    job: ChunkJob, model: CatalogModel, user_ids: list[str]
) -> tuple[UserParams, Events, list[list[TruthRow]]]:
    """The chunk's users, every valid event (normal and planted) sorted by time then funnel step,
    and the truth rows of each campaign run (none, the campaign, or the campaign and its rerun)."""
    rng = stream(job.seed, job.chunk, BEHAVIOUR_STREAM)
    users = draw_users(rng, len(user_ids), job.days)
    ev = simulate(rng, users, job.days, model, n_weeks(job.days))
    truths: list[list[TruthRow]] = []
    if job.run_day >= 0:
        campaign_rng = stream(job.seed, job.chunk, CAMPAIGN_STREAM)
        run_days = [job.run_day] + ([job.run_day + RERUN_AFTER_DAYS] if job.uplift_types else [])
        for run_day in run_days:
            # The rerun's eligibility sees the first run's planted orders: they are in the log.
            planted, truth = plant_campaign(
                campaign_rng,
                users,
                ev,
                model,
                run_day,
                job.planted_prob,
                user_ids,
                with_types=job.uplift_types,
            )
            ev = {k: np.concatenate([ev[k], planted[k]]) for k in ev}
            truths.append(truth)
    order = np.lexsort((EVENT_RANK[ev["et"]], ev["t"]))
    return users, {k: v[order] for k, v in ev.items()}, truths


def _users_csv(
    job: ChunkJob, u: UserParams, ev: Events, user_ids: list[str], opt: np.ndarray
) -> tuple[str, dict[str, int]]:
    """The chunk's rows of truth/users.csv (persona and parameters per user) and users per persona."""
    start, days = job.start, job.days
    n_ev = np.bincount(ev["u"], minlength=len(user_ids))
    n_ord = np.bincount(ev["u"][ev["et"] == ORDER], minlength=len(user_ids))
    buf = io.StringIO()
    users_csv = csv.writer(buf, lineterminator="\n")
    personas = dict.fromkeys((p.name for p in PERSONAS), 0)
    cats = list(CATEGORIES)
    top_cat = np.argmax(u.cat_w, axis=1).tolist()
    top_brand = np.argmax(u.brand_w, axis=1).tolist()
    for i, uid in enumerate(user_ids):
        persona = PERSONAS[u.persona[i]].name
        personas[persona] += 1
        churn = "" if u.churn_day[i] >= days else (start + timedelta(days=int(u.churn_day[i]))).isoformat()
        users_csv.writerow(
            [
                uid, persona, "ios" if u.platform[i] else "android", PRICE_LEVELS[u.price_level[i]],
                (start + timedelta(days=int(u.join_day[i]))).isoformat(), churn,
                f"{u.p_active[i]:.4f}", f"{u.rate[i]:.4f}", f"{u.p_cart[i]:.4f}", f"{u.p_order[i]:.4f}",
                f"{u.coupon_sens[i]:.4f}", cats[top_cat[i]], BRANDS[top_brand[i]], int(n_ev[i]), int(n_ord[i]),
                int(opt[i]),
            ]
        )  # fmt: skip
    return buf.getvalue(), personas


class _BadIds:
    """Event ids of the bad lines that need a fresh one: ``e-x<chunk:05d><seq:08d>``."""

    def __init__(self, chunk: int) -> None:
        self.chunk = chunk
        self.seq = 0

    def __call__(self) -> str:
        self.seq += 1
        return f"e-x{self.chunk:05d}{self.seq:08d}"


def _write_event_files(job: ChunkJob, ev: Events, fmt: EventFormatter, user_ids: list[str]) -> FileStats:
    """Events, one file per (date, chunk); bad lines are extra lines inserted among the valid ones."""
    stats = FileStats()
    seq = 0
    brng = stream(job.seed, job.chunk, BAD_RECORDS_STREAM)
    trng = stream(job.seed, job.chunk, TIME_FORMAT_STREAM)
    bounds = np.searchsorted(ev["t"] // SECONDS_PER_DAY, np.arange(job.days + 1))
    forced = job.chunk == 0 and job.bad_rate > 0  # every kind at least once, even in tiny datasets
    next_id = _BadIds(job.chunk)
    for d in range(job.days):
        lo, hi = int(bounds[d]), int(bounds[d + 1])
        if hi == lo:
            continue
        dev = {k: v[lo:hi] for k, v in ev.items()}
        n = hi - lo
        roll = trng.random(n)
        time_fmt = np.where(
            roll < job.epoch_share / 2,
            EPOCH_SECONDS,
            np.where(roll < job.epoch_share, EPOCH_MILLIS, ISO_TIME),
        )
        ms = trng.integers(0, 1000, n)
        stats.epoch_lines += int((time_fmt > 0).sum())
        lines = fmt.lines(dev, job.chunk, seq, user_ids, time_fmt, ms)
        seq += n
        if job.bad_rate > 0:
            counts_bad = brng.multinomial(brng.binomial(n, job.bad_rate), BAD_SHARES)
            if forced:
                counts_bad = counts_bad + 1
                forced = False
            lines = _with_bad_lines(lines, bad_lines(brng, counts_bad, lines, dev, fmt, next_id), stats)
        folder = Path(job.out) / "events" / f"event_date={(job.start + timedelta(days=d)).isoformat()}"
        folder.mkdir(exist_ok=True)
        with open(folder / f"part-{job.chunk:05d}.jsonl", "wb") as f:
            f.write(("\n".join(lines) + "\n").encode("utf-8"))
        stats.event_files += 1
        stats.lines += len(lines)
    return stats


def _with_bad_lines(lines: list[str], bad: list[tuple[int, str, str]], stats: FileStats) -> list[str]:
    """``lines`` with each bad line inserted after the valid line at its position (stable order)."""
    for _, kind, _ in bad:
        stats.bad_counts[kind] += 1
    keys = np.concatenate(
        [np.arange(len(lines)) * 2, np.array([2 * p + 1 for p, _, _ in bad], dtype=np.int64)]
    )
    merged = lines + [line for _, _, line in bad]
    return [merged[i] for i in np.argsort(keys, kind="stable")]
