"""Reproducible samples of a population (docs/samples.md). The algorithm, so anyone can re-draw:

    ids = sorted(row["id"] for row in population)        # Python's str order (code points)
    sample = ids if size >= len(ids) else random.Random(seed).sample(ids, size)

with CPython's `random` (Mersenne Twister; an int seed ≥ 0). The ids are kept in the order drawn.
Sizes follow the control's frequency (controls.yaml `frequency`, `sample_size` overrides; a default
per population kind), the lower end of the common range. Each draw is recorded in the store's
append-only audit trail (store.samples) with the population's SHA-256 and count, so it can be checked
later: verify() reads the population again and re-draws."""
from __future__ import annotations

import datetime as dt
import random
import re
from typing import Optional

from auditbook.auth import Actor, authorize
from auditbook.catalog.model import Catalog, Control
from auditbook.errors import UserError, shown
from auditbook.evaluate.tickets import ticket_pattern
from auditbook.history.period import Period, parse_period
from auditbook.history.populations import (
    CRITERION_KINDS,
    KINDS,
    Population,
    change_completeness,
    completeness_lines,
    default_kind,
    population,
    population_file,
    rows_sha256,
)
from auditbook.store import samples as stored
from auditbook.store.session import reading, writing

ALGORITHM = "python-random-sample/1"  # random.Random(seed).sample(sorted ids, size)
MAX_SEED = 2**63 - 1
MAX_SIZE = 1000
FREQUENCY_SIZES = {"annual": (1, 1), "quarterly": (2, 2), "monthly": (2, 5), "weekly": (5, 15),
                   "daily": (20, 40), "many-times-a-day": (25, 60)}
# how often each kind of population's control operates when controls.yaml does not say
DEFAULT_FREQUENCY = {"resources": "daily", "alerts": "many-times-a-day", "incidents": "weekly",
                     "changes": "many-times-a-day", "access": "weekly", "manual": "quarterly"}
YEAR = re.compile(r"[0-9]{4}")


def parse_audit_period(text: str) -> Period:
    """--period: a quarter (2026Q3), a year (2026) or START..END (whole UTC days)."""
    text = (text or "").strip()
    if YEAR.fullmatch(text):
        return parse_period(start=f"{text}-01-01", end=f"{text}-12-31")
    if ".." in text:
        first, _, last = text.partition("..")
        return parse_period(start=first.strip(), end=last.strip())
    return parse_period(text)


def checked_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise UserError(f"--seed: {shown(seed)} is not a whole number from 0 to {MAX_SEED}")
    return seed


def checked_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_SIZE:
        raise UserError(f"--size: {shown(size)} is not a whole number from 1 to {MAX_SIZE}")
    return size


def draw(ids_or_population, size: int, seed: int) -> list[str]:
    """The sample: `size` ids drawn from the population's ids (sorted) with random.Random(seed), in the
    order drawn; the whole population (sorted) when it has no more than `size` rows."""
    ids = ids_or_population.ids if isinstance(ids_or_population, Population) else list(ids_or_population)
    ordered = sorted(ids)
    size, seed = checked_size(size), checked_seed(seed)
    return ordered if size >= len(ordered) else random.Random(seed).sample(ordered, size)


def size_for(control: Control, kind: str, catalog: Optional[Catalog] = None) -> tuple[int, str]:
    """(sample size, how it was chosen) by the control's frequency: `sample_size` if set, else the
    lower end of its frequency's range — the criterion's own (controls.yaml), else the most frequent of
    the company's controls mapped to it (an auditor sizes by the company's stated frequency), else the
    population kind's default."""
    if control.sample_size is not None:
        return control.sample_size, "sample_size in the catalog"
    company = _company_frequency(catalog, control.id) if catalog is not None and not control.frequency else None
    frequency = control.frequency or (company[0] if company else DEFAULT_FREQUENCY[kind])
    low, high = FREQUENCY_SIZES[frequency]
    source = ("catalog" if control.frequency else f"company control {company[1]}" if company
              else f"default for {kind}")
    return low, f"frequency {frequency} ({source}): {low}" + (f"–{high}" if high != low else "")


def _company_frequency(catalog: Catalog, criterion: str) -> Optional[tuple[str, str]]:
    """(frequency, company control id) of the most frequent company control mapped to the criterion."""
    mapped = [(FREQUENCY_SIZES[c.frequency][0], c.frequency, c.id) for c in catalog.company_controls
              if criterion in c.criteria and c.frequency in FREQUENCY_SIZES]
    return max(mapped)[1:] if mapped else None


def _control(catalog: Catalog, criterion: str) -> Control:
    if criterion not in {c.id for c in catalog.controls}:
        raise UserError(f"CONTROL: {shown(criterion)} is not a criterion of the catalog")
    return catalog.control(criterion)


def take_sample(engine, catalog: Catalog, actor: Actor, criterion: str, period: Period, *, seed: int,
                size: Optional[int] = None, by_frequency: bool = False, kind: Optional[str] = None,
                ticket: Optional[str] = None, at: Optional[dt.datetime] = None) -> dict:
    """Draw a sample of the criterion's population over the period and record the draw (who, when,
    criterion, kind, period, population hash and count, seed, size, ids) in the audit trail."""
    authorize(actor, "draw_sample")
    control = _control(catalog, criterion)
    checked_seed(seed)
    if (size is None) == (not by_frequency):
        raise UserError("--size: give either --size N or --by-frequency")
    kind = kind or default_kind(catalog, criterion)
    if kind not in KINDS:
        raise UserError(f"--population: {shown(kind)} is not one of {', '.join(KINDS)}")
    size, how = (checked_size(size), "--size") if size is not None else size_for(control, kind, catalog)
    pattern = ticket_pattern(ticket).pattern if kind in ("changes", "access") else None
    pop = population(engine, catalog, kind, period, criterion=criterion, ticket=pattern)
    at = at or dt.datetime.now(dt.timezone.utc)
    recorded = {"criterion": criterion, "kind": kind, "period": period.as_dict(), "algorithm": ALGORITHM,
                "population_sha256": pop.sha256, "population_count": pop.count, "seed": seed, "size": size,
                "size_from": how, "ids": draw(pop, size, seed), "ticket_pattern": pattern, "at": at.isoformat()}
    with writing(engine) as session:
        stored.record_draw(session, actor, period.start, period.end, recorded, at=at)
    return {**recorded, "drawn_by": actor.name, "population": pop}


def recorded_draws(engine, period: Period, criterion: Optional[str] = None) -> list[dict]:
    """The draws recorded for the period (of one criterion, if given), oldest first."""
    with reading(engine) as session:
        found = stored.draws(session, period.start, period.end)
    return [d for d in found if criterion is None or d.get("criterion") == criterion]


def redraw_problems(recorded: dict, rows: list[dict]) -> list[str]:
    """What differs when the draw is made again from these rows: the population's hash or count, or
    the ids drawn. [] when the same sample comes out."""
    problems = []
    sha = rows_sha256(rows)
    if sha != recorded.get("population_sha256"):
        problems.append(f"population {recorded.get('kind')}: SHA-256 {sha} is not the recorded "
                        f"{recorded.get('population_sha256')}")
    if len(rows) != recorded.get("population_count"):
        problems.append(f"population {recorded.get('kind')}: {len(rows)} rows, recorded {recorded.get('population_count')}")
    again = draw([r["id"] for r in rows], recorded["size"], recorded["seed"])
    if again != recorded.get("ids"):
        problems.append(f"sample: re-drawn ids {again} are not the recorded {recorded.get('ids')}")
    return problems


def verify_draw(engine, catalog: Catalog, recorded: dict, ticket: Optional[str] = None) -> list[str]:
    """Read the recorded draw's population from the store again (with the ticket pattern it was drawn
    with, else `ticket`) and re-draw: the differences ([]: the same sample)."""
    if recorded.get("algorithm") != ALGORITHM:
        return [f"sample: algorithm {shown(recorded.get('algorithm'))} is not {ALGORITHM}"]
    span = recorded.get("period")
    if not isinstance(span, dict) or not all(isinstance(span.get(k), str) for k in ("start", "end")):
        return [f"sample: period {shown(span)} is not a recorded period"]
    period = parse_period(start=span["start"], end=span["end"])
    pop = population(engine, catalog, recorded["kind"], period, criterion=recorded["criterion"],
                     ticket=recorded.get("ticket_pattern") or ticket)
    return redraw_problems(recorded, pop.rows)


def criterion_samples(engine, catalog: Catalog, criterion: str, period: Period) -> dict:
    """What a criterion's page shows of its population and samples: the kind it is sampled from, the
    packet's file of that population (under data/), and the draws recorded for it in the period; for
    the CloudTrail populations (changes, access) their completeness and its lines (change_completeness)."""
    kind = default_kind(catalog, criterion)
    draws = recorded_draws(engine, period, criterion)
    if kind in CRITERION_KINDS and any(d.get("kind") == kind for d in draws):
        name = population_file(kind, criterion)
    else:
        name = f"{criterion}-population.csv" if kind == "resources" else population_file(kind)
    shown_draws = [{"drawn at": d.get("at"), "by": d.get("drawn_by"), "population": d.get("kind"),
                    "rows": d.get("population_count"), "population SHA-256": d.get("population_sha256"),
                    "seed": d.get("seed"), "size": d.get("size"), "sampled ids": ", ".join(d.get("ids") or [])}
                   for d in draws]
    if kind not in ("changes", "access"):
        return {"kind": kind, "population_file": name, "draws": shown_draws}
    complete = change_completeness(engine, period)  # a population of CloudTrail events: how complete it is
    return {"kind": kind, "population_file": name, "draws": shown_draws, "completeness": complete,
            "completeness_lines": [line[2:] for line in completeness_lines(complete)]}
