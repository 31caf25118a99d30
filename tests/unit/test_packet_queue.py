"""The queue the packet's notebook workers take their criteria from (report.packet.workers): in order;
a held criterion (one that needs the findings the build is still reading) waits while others are left
and is given all the same when only held ones are; a callback once the last one is given out (the
index's kernel then starts)."""
from auditbook.report.packet.workers import _Queue

JOBS = [("CC6.1", {}), ("CC6.6", {}), ("CC1.1", {}), ("CC1.2", {})]


def test_in_order_without_holding():
    queue = _Queue(JOBS, None, None)
    assert [queue.take()[0] for _ in JOBS] == ["CC6.1", "CC6.6", "CC1.1", "CC1.2"] and queue.take() is None


def test_held_criteria_wait_while_others_are_left_and_are_never_starved():
    reading = [True]
    queue = _Queue(JOBS, lambda job: reading[0] and job[0] in ("CC6.1", "CC6.6"), None)
    assert queue.take()[0] == "CC1.1"
    assert queue.take()[0] == "CC1.2"
    assert queue.take()[0] == "CC6.1"  # only held ones left: given all the same (its kernel waits for the read)
    reading[0] = False
    assert queue.take()[0] == "CC6.6" and queue.take() is None


def test_held_criteria_go_first_again_once_released():
    reading = [True]
    queue = _Queue(JOBS, lambda job: reading[0] and job[0] in ("CC6.1", "CC6.6"), None)
    assert queue.take()[0] == "CC1.1"
    reading[0] = False
    assert [queue.take()[0], queue.take()[0], queue.take()[0]] == ["CC6.1", "CC6.6", "CC1.2"]


def test_the_last_job_given_out_is_announced_once():
    calls = []
    queue = _Queue(JOBS[:2], None, lambda: calls.append(len(calls)))
    queue.take()
    assert calls == []
    queue.take()
    assert calls == [0]
    assert queue.take() is None and calls == [0]
