"""Reproducible samples (issue 14 §3): the same seed and population give the same ids, another seed
others; sizes by control frequency (and the catalog's override); each draw recorded in the audit trail
and re-drawn identically; `auditbook sample` prints and records it, and bad input is one line, exit 2."""
import datetime as dt
import json
import random

import pytest
import yaml
from freezegun import freeze_time

from auditbook.auth import Actor, PermissionDenied
from auditbook.catalog.model import DEFAULT_PATH, load_catalog
from auditbook.errors import UserError
from auditbook.history.period import parse_period
from auditbook.history.populations import population
from auditbook.history.sampling import (
    FREQUENCY_SIZES,
    draw,
    parse_audit_period,
    recorded_draws,
    redraw_problems,
    size_for,
    take_sample,
    verify_draw,
)
from auditbook.monitor import alerts, triage
from auditbook.store.session import writing
from tests.catalog_edits import write_catalog
from tests.conftest import run_main

AUDITOR, ANALYST, WALL = Actor("aud", "auditor"), Actor("ana", "analyst"), Actor("wall screen", "wall")
T0 = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.timezone.utc)
Q4 = parse_period("2026Q4")
IDS = [f"alert-{n:09d}" for n in range(1, 101)]


@pytest.fixture
def engine(tmp_path):
    from auditbook.store.db import open_engine
    engine = open_engine(f"sqlite:///{tmp_path}/s.db")
    with freeze_time(T0), writing(engine) as session:
        for n in range(30):
            alerts.fire(session, rule=f"Rule{n}", labels={"n": str(n)}, severity="low", soc2_control="CC7.2",
                        summary=f"alert {n}", at=T0 + dt.timedelta(hours=n))
    return engine


def test_the_same_seed_draws_the_same_ids_and_another_seed_others():
    first = draw(IDS, 10, seed=42)
    assert draw(list(reversed(IDS)), 10, seed=42) == first  # the ids are sorted first: their order does not matter
    assert len(set(first)) == 10 and set(first) <= set(IDS)
    assert draw(IDS, 10, seed=43) != first
    assert first == random.Random(42).sample(sorted(IDS), 10)  # the documented algorithm, by hand


def test_a_population_smaller_than_the_size_is_taken_whole():
    assert draw(IDS[:3][::-1], 25, seed=1) == IDS[:3]
    assert draw([], 5, seed=1) == []


@pytest.mark.parametrize("size,seed,message", [(0, 1, "--size: 0"), (1001, 1, "--size: 1001"), (5, -1, "--seed: -1"),
                                               (5, 2**63, "--seed: "), (True, 1, "--size: True")])
def test_bad_size_or_seed_is_refused(size, seed, message):
    with pytest.raises(UserError, match=message):
        draw(IDS, size, seed)


def test_sizes_by_frequency_and_the_catalogs_override(tmp_path):
    raw = yaml.safe_load(DEFAULT_PATH.read_text())
    raw.pop("parameters_file", None)  # the thresholds' defaults: the company file is not copied
    for control in raw["controls"]:
        if control["id"] == "CC7.3":
            control["frequency"] = "weekly"
        if control["id"] == "CC8.1":
            control["sample_size"] = 7
    path = write_catalog(tmp_path, text=yaml.safe_dump(raw, sort_keys=False))  # with the library it includes
    catalog = load_catalog(path)
    assert size_for(catalog.control("CC7.3"), "alerts") == (5, "frequency weekly (catalog): 5–15")
    assert size_for(catalog.control("CC8.1"), "changes") == (7, "sample_size in the catalog")
    assert size_for(catalog.control("CC7.4"), "incidents")[0] == FREQUENCY_SIZES["weekly"][0]
    assert size_for(catalog.control("CC6.6"), "resources")[0] == 20  # daily
    assert size_for(catalog.control("CC1.1"), "manual")[0] == 2  # quarterly
    # with the catalog: a criterion without its own frequency takes its company controls' (the most
    # frequent): an auditor found CC6.6 sized "daily" while NET-01 says many-times-a-day
    assert size_for(catalog.control("CC6.6"), "resources", catalog) == (
        25, "frequency many-times-a-day (company control NET-01): 25–60")
    assert size_for(catalog.control("CC7.3"), "alerts", catalog)[1] == "frequency weekly (catalog): 5–15"
    assert {k: v[0] for k, v in FREQUENCY_SIZES.items()} == {"annual": 1, "quarterly": 2, "monthly": 2, "weekly": 5,
                                                             "daily": 20, "many-times-a-day": 25}
    raw["controls"][0]["frequency"] = "hourly"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(UserError, match="field frequency"):
        load_catalog(path)


def test_periods_a_quarter_a_year_or_two_days():
    assert (parse_audit_period("2026Q3").start, parse_audit_period("2026Q3").end) == (dt.date(2026, 7, 1), dt.date(2026, 9, 30))
    assert (parse_audit_period("2026").start, parse_audit_period("2026").end) == (dt.date(2026, 1, 1), dt.date(2026, 12, 31))
    assert parse_audit_period("2026-07-01..2026-07-06").end == dt.date(2026, 7, 6)
    for bad in ("2026Q5", "26", "2026-07-06..2026-07-01", "x..y", ""):
        with pytest.raises(UserError):
            parse_audit_period(bad)


def test_a_draw_is_recorded_and_re_drawn_identically(engine):
    catalog = load_catalog()
    drawn = take_sample(engine, catalog, AUDITOR, "CC7.3", Q4, seed=7, size=5)
    assert drawn["kind"] == "alerts" and drawn["population_count"] == 30 and len(drawn["ids"]) == 5
    found = recorded_draws(engine, Q4, "CC7.3")
    assert len(found) == 1 and found[0]["drawn_by"] == "aud" and found[0]["ids"] == drawn["ids"]
    assert found[0]["population_sha256"] == population(engine, catalog, "alerts", Q4).sha256
    assert verify_draw(engine, catalog, found[0]) == []
    assert recorded_draws(engine, Q4, "CC8.1") == [] and recorded_draws(engine, parse_period("2026Q3")) == []
    assert take_sample(engine, catalog, AUDITOR, "CC7.3", Q4, seed=7, size=5)["ids"] == drawn["ids"]


def test_a_changed_population_or_altered_record_is_reported(engine):
    catalog = load_catalog()
    drawn = take_sample(engine, catalog, AUDITOR, "CC7.3", Q4, seed=7, by_frequency=True)
    assert len(drawn["ids"]) == 25  # many times a day: alerts' default
    recorded = recorded_draws(engine, Q4)[0]
    a = alerts.get(engine, 1)
    triage.triage(engine, ANALYST, 1, a["version"], assignee="bob")
    problems = verify_draw(engine, catalog, recorded)
    assert len(problems) == 1 and "SHA-256" in problems[0]  # same ids, another hash: the population changed
    rows = population(engine, catalog, "alerts", Q4).rows
    assert any("re-drawn ids" in p for p in redraw_problems({**recorded, "seed": 8}, rows))


@pytest.mark.parametrize("role", ["wall", "viewer", "analyst", "approver"])
def test_only_auditors_and_admins_draw_a_sample(engine, role):
    """A recorded draw is the auditor's act (draw_sample: auditor, admin): anyone else could fill the
    trail with draws and pick the friendliest one."""
    with pytest.raises(PermissionDenied):
        take_sample(engine, load_catalog(), Actor("someone", role), "CC7.3", Q4, seed=1, size=2)
    assert recorded_draws(engine, Q4) == []


# -- the command -----------------------------------------------------------------------------------

run = run_main  # `auditbook ARGS` in-process: (exit code, stdout, stderr)


@pytest.fixture
def db(engine):
    return str(engine.url)


def test_the_command_prints_the_population_and_sample_and_records_it(db, engine, capsys, monkeypatch):
    code, out, err = run(capsys, monkeypatch, "sample", "CC7.3", "--period", "2026Q4", "--size", "3",
                         "--seed", "11", "--db", db)
    assert code == 0, err
    sha = population(engine, load_catalog(), "alerts", Q4).sha256
    assert f"population: 30 rows · SHA-256 {sha}" in out and "sample: 3 of 30" in out
    ids = draw(IDS[:30], 3, 11)
    assert all(i in out for i in ids)
    assert recorded_draws(engine, Q4)[0]["ids"] == ids
    code, out, err = run(capsys, monkeypatch, "sample", "CC7.3", "--period", "2026-10-01..2026-12-31", "--verify",
                         "--db", db)
    assert code == 0 and "same sample" in out, out + err
    code, out, err = run(capsys, monkeypatch, "sample", "CC7.3", "--period", "2026Q4", "--by-frequency",
                         "--seed", "11", "--format", "json", "--db", db)
    shown = json.loads(out)
    assert shown["size"] == 25 and [r["id"] for r in shown["sample"]] == shown["ids"]


@pytest.mark.parametrize("args,message", [
    (("CC7.3", "--period", "2026Q9", "--size", "2", "--seed", "1"), "error: --period: '2026Q9' is not a quarter"),
    (("CC7.9", "--period", "2026Q4", "--size", "2", "--seed", "1"), "error: CONTROL: 'CC7.9' is not a criterion"),
    (("CC7.3", "--period", "2026Q4", "--size", "0", "--seed", "1"), "error: --size: 0 is not a whole number"),
    (("CC7.3", "--period", "2026Q4", "--size", "2", "--seed=-1"), "error: --seed: -1 is not a whole number"),
    (("CC7.3", "--period", "2026Q4", "--seed", "1"), "error: --size: give either --size N or --by-frequency"),
    (("CC7.3", "--period", "2026Q4", "--size", "2"), "error: --seed: required"),
    (("CC7.3", "--period", "2026Q4", "--size", "2", "--seed", "1", "--population", "x\x1b[2J"),
     "error: --population: 'x\\x1b[2J' is not one of"),
])
def test_bad_input_is_one_line_and_exit_2_and_records_nothing(db, engine, capsys, monkeypatch, args, message):
    code, out, err = run(capsys, monkeypatch, "sample", *args, "--db", db)
    assert code == 2 and err.startswith(message) and err.count("\n") == 1, err
    assert "Traceback" not in err and recorded_draws(engine, Q4) == []


def test_a_changes_draw_keeps_its_ticket_pattern_and_re_draws_with_it(engine):
    from tests.unit.test_populations import write_event
    for n in range(4):
        write_event(engine, session_name=f"deploy-ops_{n}", at=T0 + dt.timedelta(minutes=n))  # not the default
    catalog = load_catalog()
    drawn = take_sample(engine, catalog, AUDITOR, "CC8.1", Q4, seed=3, size=2, ticket=r"ops_[0-9]+")
    rows = {r["id"]: r for r in drawn["population"].rows}
    assert drawn["kind"] == "changes" and drawn["ticket_pattern"] == "ops_[0-9]+"
    assert {rows[i]["ticket"] for i in drawn["ids"]} <= {f"ops_{n}" for n in range(4)}
    recorded = recorded_draws(engine, Q4, "CC8.1")[0]
    assert verify_draw(engine, catalog, recorded) == []  # not the default pattern: the recorded one
    assert verify_draw(engine, catalog, {**recorded, "ticket_pattern": None}) != []


def test_what_a_criterion_page_shows_of_its_samples(engine):
    from auditbook.history.sampling import criterion_samples
    catalog = load_catalog()
    assert criterion_samples(engine, catalog, "CC6.6", Q4) == {"kind": "resources",
                                                                "population_file": "CC6.6-population.csv", "draws": []}
    take_sample(engine, catalog, AUDITOR, "CC7.3", Q4, seed=5, size=2)
    shown = criterion_samples(engine, catalog, "CC7.3", Q4)
    assert shown["kind"] == "alerts" and shown["population_file"] == "population-alerts.csv"
    assert [(d["by"], d["seed"], d["rows"]) for d in shown["draws"]] == [("aud", 5, 30)]
    take_sample(engine, catalog, AUDITOR, "CC1.1", Q4, seed=5, size=1)
    assert criterion_samples(engine, catalog, "CC1.1", Q4)["population_file"] == "population-manual-CC1.1.csv"


def test_a_malformed_record_is_a_problem_line_not_a_crash(engine):
    catalog = load_catalog()
    take_sample(engine, catalog, AUDITOR, "CC7.3", Q4, seed=5, size=2)
    recorded = recorded_draws(engine, Q4)[0]
    assert verify_draw(engine, catalog, {**recorded, "algorithm": "x"}) == [
        "sample: algorithm 'x' is not python-random-sample/1"]
    assert verify_draw(engine, catalog, {**recorded, "period": ["2026"]}) == [
        "sample: period ['2026'] is not a recorded period"]
