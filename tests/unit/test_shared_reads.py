"""A packet build's kernel shares the reads its criterion notebooks repeat (the period's runs, the
manual items' states, the types a run attempted): read once there, as of the first read; read on every
call everywhere else (the control room must see a new run at once)."""
import datetime as dt

import pytest

from auditbook.catalog.model import load_catalog
from auditbook.history import shared_reads
from auditbook.history.period import parse_period, period_runs
from auditbook.history.status import manual_item_states, run_coverage
from auditbook.store.session import reading

UTC = dt.timezone.utc
Q4 = parse_period("2026Q4")


def _store_run(engine, tmp_path, day: int) -> None:
    from auditbook.collect.records import Collection, Scope
    from auditbook.evaluate.risk_register import load_register
    from auditbook.scan import record_run
    at = dt.datetime(2026, 10, day, 6, tzinfo=UTC)
    record_run(engine, load_catalog(), load_register(tmp_path / "none.yaml"),
               Collection(scopes=[Scope("111111111111", "eu-west-1", "aws.ec2.security_group")]), [],
               {"regions": ["eu-west-1"]}, at, at + dt.timedelta(minutes=1))


@pytest.fixture
def engine(tmp_path):
    from auditbook.store.db import open_engine
    engine = open_engine(f"sqlite:///{tmp_path}/s.db")
    _store_run(engine, tmp_path, 5)
    return engine


@pytest.fixture
def sharing(monkeypatch):
    monkeypatch.setattr(shared_reads, "_SHARING", False)
    monkeypatch.setattr(shared_reads, "_VALUES", {})
    shared_reads.share_in_this_process()


def test_without_sharing_every_call_reads_the_store(engine, tmp_path, monkeypatch):
    monkeypatch.setattr(shared_reads, "_SHARING", False)
    assert len(period_runs(engine, Q4).runs) == 1
    _store_run(engine, tmp_path, 6)
    assert len(period_runs(engine, Q4).runs) == 2


def test_a_sharing_kernel_reads_the_period_once_as_of_its_first_read(engine, tmp_path, sharing):
    first = period_runs(engine, Q4)
    _store_run(engine, tmp_path, 6)
    assert [r.id for r in period_runs(engine, Q4).runs] == [r.id for r in first.runs] == [1]
    assert len(period_runs(engine, parse_period(start="2026-10-01", end="2026-10-31")).runs) == 2  # another read: read


def test_shared_values_are_keyed_by_store_and_catalog(engine, tmp_path, sharing):
    from auditbook.store.db import open_engine
    other = open_engine(f"sqlite:///{tmp_path}/other.db")
    assert len(period_runs(engine, Q4).runs) == 1 and period_runs(other, Q4).runs == []
    catalog = load_catalog()
    one = catalog.model_copy(update={"controls": [c for c in catalog.controls if c.id == "CC6.1"]})
    with reading(engine) as session:
        every = manual_item_states(session, catalog, dt.date(2026, 12, 31), Q4.start)
        only = manual_item_states(session, one, dt.date(2026, 12, 31), Q4.start)
        assert {s.criterion for s in only} <= {"CC6.1"} < {s.criterion for s in every}
        coverage = run_coverage(session, 1)
        coverage["aws.made.up"] = True  # a reader changing its copy changes nothing shared
        assert "aws.made.up" not in run_coverage(session, 1) and run_coverage(session, 1)


def test_the_packet_kernel_turns_sharing_on_before_it_starts(monkeypatch):
    import ipykernel.kernelapp

    import auditbook.report.packet.lifeline as lifeline
    from auditbook.report.packet import kernel
    monkeypatch.setattr(shared_reads, "_SHARING", False)
    started = []
    monkeypatch.setattr(lifeline, "die_with_parent", lambda pid: None)
    monkeypatch.setattr(ipykernel.kernelapp, "launch_new_instance", lambda: started.append(shared_reads._SHARING))
    kernel.main()
    assert started == [True]


def test_a_thread_shares_only_within_its_block_and_only_its_own_reads(engine, tmp_path, monkeypatch):
    """The build's data thread (report.packet.data.write_data) shares its reads while it writes; the
    build's other threads, and the same thread after the block, read the store on every call."""
    import threading
    monkeypatch.setattr(shared_reads, "_SHARING", False)
    seen_elsewhere = []
    with shared_reads.shared_in_this_thread():
        assert shared_reads.active()
        first = period_runs(engine, Q4)
        _store_run(engine, tmp_path, 6)
        assert [r.id for r in period_runs(engine, Q4).runs] == [r.id for r in first.runs] == [1]
        with shared_reads.shared_in_this_thread():  # nested: the same shared values
            assert len(period_runs(engine, Q4).runs) == 1
        other = threading.Thread(target=lambda: seen_elsewhere.append((shared_reads.active(),
                                                                        len(period_runs(engine, Q4).runs))))
        other.start()
        other.join()
        assert len(period_runs(engine, Q4).runs) == 1
    assert seen_elsewhere == [(False, 2)]
    assert not shared_reads.active() and len(period_runs(engine, Q4).runs) == 2  # forgotten at the end


def test_a_failed_read_is_not_shared(monkeypatch):
    monkeypatch.setattr(shared_reads, "_SHARING", False)
    calls = []

    def read():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the store went away")
        return "value"
    with shared_reads.shared_in_this_thread():
        with pytest.raises(RuntimeError):
            shared_reads.once(("k",), read)
        assert shared_reads.once(("k",), read) == "value" and shared_reads.once(("k",), read) == "value"
    assert len(calls) == 2
