"""The simulated quarter's clock for the alerts it raises (SIMULATED).

An alert's `fired_at` — when its triage clock starts — is the store's "now" (auditbook.store.alerts.now)
or the event's time, whichever is later: an old backlog read today starts its clock today. The demo
simulates a quarter that is over, so inside `alert_clock(at)` the store's alert clock reads the
simulated moment `at`, ticking on: an alert raised by that simulated day's scan or watch cycle fired in
the period, when the simulated event happened, as it would have had auditbook been running then.
Likewise `incident_clock(at)` for the incidents the quarter's on-call opened and closed (their times and
audit-trail entries). Everything else (the checks' evaluation, the documents' upload times, the audit
work after the quarter) keeps the real clock: the demo happens today."""
from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from typing import Iterator

from auditbook.store import alerts as stored_alerts


@contextmanager
def alert_clock(at: dt.datetime) -> Iterator[dt.datetime]:
    """The store's alert clock set to `at` (UTC) and ticking, for one simulated moment of the quarter;
    restored on the way out, however it is left."""
    with _shifted(stored_alerts, at):
        yield at


@contextmanager
def incident_clock(at: dt.datetime) -> Iterator[dt.datetime]:
    """The incident service's clock (monitor.incidents.now: created, acknowledged, resolved, closed and
    their audit-trail entries) set to `at` (UTC) and ticking, for one simulated moment of the quarter:
    an incident the quarter's on-call opened is recorded in the period, as it would have been had
    auditbook been running then. Restored on the way out, however it is left."""
    from auditbook.monitor import incidents
    with _shifted(incidents, at):
        yield at


@contextmanager
def _shifted(module, at: dt.datetime) -> Iterator[None]:
    """`module.now` set to `at` and ticking; the real clock back however the block is left."""
    real = module.now
    offset = at - real()
    module.now = lambda: real() + offset
    try:
        yield
    finally:
        module.now = real
