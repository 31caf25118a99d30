"""Owners are told before their manual evidence lapses (`auditbook evidence remind`, daily, and the
watch loop): each item that is missing, expired, or lapses within `within` days goes to its owner's
channels from notify.yml, and every reminder is recorded (evidence_reminders: what, to whom, on
which channel, when, sent or failed). A reminder sent is not sent again the same day; one that
failed is tried again at the next call.

The owner of an item is the owner of its latest evidence on file, or, when there is none, the
catalog's owner of the criterion. An owner's channels are those whose `owners:` list names them
(compared without case or surrounding spaces); an owner no channel names goes to the channels
listing "*"; an owner with neither is reported as not routed (nothing is sent for them).

A failure is recorded by its class alone (`ConnectionRefusedError`, `HTTP 500`,
`SMTPAuthenticationError`): never an exception's text or a server's answer, which may carry the
channel's URL or credentials."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Callable, Optional

import requests

from auditbook.catalog.model import Catalog
from auditbook.errors import UserError
from auditbook.plugins import channel_kinds
from auditbook.scan import evidence_status
from auditbook.store import evidence_reminders as stored
from auditbook.store.session import reading, writing

DEFAULT_WITHIN = 14  # days before an item lapses that its owner is told
EVERY_OWNER = "*"
TIMEOUT = 10.0


@dataclass(frozen=True)
class DueItem:
    criterion: str
    item: str
    cadence: str
    state: str  # due (lapses within the lead time), expired, missing
    due_on: Optional[dt.date]  # the day it lapses (due) or lapsed (expired); None when missing
    owner: str

    def as_dict(self) -> dict:
        return {"criterion": self.criterion, "item": self.item, "cadence": self.cadence, "state": self.state,
                "due_on": self.due_on, "owner": self.owner}


@dataclass
class RemindResult:
    day: dt.date
    due: list[DueItem] = field(default_factory=list)
    sent: list[dict] = field(default_factory=list)  # one per item and channel (as recorded)
    failed: list[dict] = field(default_factory=list)
    already: int = 0  # items reminded of earlier the same day, on the same channel
    unrouted: list[str] = field(default_factory=list)  # owners no channel takes


def due_items(engine, catalog: Catalog, day: dt.date, within: int = DEFAULT_WITHIN) -> list[DueItem]:
    """The manual evidence items missing, expired, or lapsing within `within` days on `day`."""
    if within < 0:
        raise UserError(f"--within: {within} is not a number of days (0 or more)")
    owners = {c.id: c.owner for c in catalog.controls}
    out = []
    for s in evidence_status(engine, catalog, day):
        if s.state == "current":
            if s.due is None or (s.due - day).days > within:
                continue
            state, due_on = "due", s.due
        else:
            state = s.state
            due_on = s.evidence.expires_on if s.evidence is not None else None
        owner = s.evidence.owner if s.evidence is not None else owners[s.criterion]
        out.append(DueItem(s.criterion, s.item, s.cadence, state, due_on, owner))
    return out


def _key(name: str) -> str:
    return " ".join(name.split()).casefold()


def routes(channels: list, owners: set[str]) -> tuple[dict[str, list], list[str]]:
    """owner -> the channels that take their reminders (a kind with `reminder` only), and the owners
    no channel takes."""
    kinds = channel_kinds()
    able = [ch for ch in channels if kinds[ch.kind].reminder is not None]
    named: dict[str, list] = {}
    for ch in able:
        for owner in getattr(ch, "owners", None) or []:
            named.setdefault(_key(owner), []).append(ch)
    fallback = named.get(EVERY_OWNER, [])
    out, unrouted = {}, []
    for owner in sorted(owners):
        found = named.get(_key(owner)) or fallback
        if found:
            out[owner] = found
        else:
            unrouted.append(owner)
    return out, unrouted


def post(ch, delivery) -> None:
    """An HTTP POST of the delivery's JSON (one attempt: a failed reminder is tried at the next call)."""
    resp = requests.post(delivery.url, json=delivery.body, auth=delivery.auth, timeout=TIMEOUT)
    if resp.status_code >= 400:
        raise _Refused(f"HTTP {resp.status_code}")


class _Refused(Exception):
    pass


def transmit(ch, delivery) -> Optional[str]:
    """Send a delivery the way its kind sends; None when sent, else the failure's class."""
    kind = channel_kinds()[ch.kind]
    try:
        (kind.send or (lambda c, d, _t: post(c, d)))(ch, delivery, TIMEOUT)
    except _Refused as exc:
        return str(exc)
    except (OSError, ValueError) as exc:  # connection, TLS, SMTP (OSError), a URL or header refused (ValueError)
        return type(exc).__name__
    return None


def _rows(items: list[DueItem], ch, day: dt.date, error: Optional[str], at: dt.datetime) -> list[dict]:
    return [{"day": day, "owner": i.owner[:200], "channel": ch.name, "kind": ch.kind, "criterion": i.criterion,
             "item": i.item, "state": i.state, "due_on": i.due_on, "status": "failed" if error else "sent",
             "error": error[:300] if error else None, "at": at} for i in items]


def _remind_owner(engine, owner: str, items: list[DueItem], channels: list, day: dt.date, result: RemindResult,
                  send: Callable) -> None:
    """One message per channel with the owner's items not yet sent there today, recorded with it."""
    with reading(engine) as session:
        done = stored.sent_on(session, day)
    for ch in channels:
        fresh = [i for i in items if (i.owner[:200], ch.name, i.criterion, i.item) not in done]
        result.already += len(items) - len(fresh)
        if not fresh:
            continue
        try:
            error = send(ch, channel_kinds()[ch.kind].reminder(ch, owner, [i.as_dict() for i in fresh]))
        except UserError as exc:  # a channel that cannot be used (a secret missing): recorded, the rest goes on
            error = str(exc)
        rows = _rows(fresh, ch, day, error, dt.datetime.now(dt.timezone.utc))
        with writing(engine) as session:
            stored.insert_reminders(session, rows)
        (result.failed if error else result.sent).extend(rows)


def remind(engine, catalog: Catalog, channels: list, *, day: Optional[dt.date] = None, within: int = DEFAULT_WITHIN,
           dry_run: bool = False, send: Optional[Callable] = None) -> RemindResult:
    """Tell each owner of due manual evidence on their channels (see the module's doc). dry_run:
    work out what is due and where it would go; send and record nothing."""
    day, send = day or dt.datetime.now(dt.timezone.utc).date(), send or transmit
    result = RemindResult(day, due_items(engine, catalog, day, within))
    by_owner: dict[str, list[DueItem]] = {}
    for item in result.due:
        by_owner.setdefault(item.owner, []).append(item)
    routed, result.unrouted = routes(channels, set(by_owner))
    if dry_run:
        result.sent = [{"owner": o, "channel": ch.name, **i.as_dict()} for o, chs in routed.items()
                       for ch in chs for i in by_owner[o]]
        return result
    for owner, chs in routed.items():
        _remind_owner(engine, owner, by_owner[owner], chs, day, result, send)
    return result


def daily_reminders(engine, channels: list, now: dt.datetime, catalog: Optional[Catalog] = None,
                    within: int = DEFAULT_WITHIN) -> Optional[RemindResult]:
    """The watch loop's reminders: the first cycle of a day (UTC) that has a channel taking
    reminders (a kind with `reminder`, naming owners) runs `remind` for that day; later cycles of the day do nothing (None), so a channel
    that is down is tried once a day by the loop (and again by `auditbook evidence remind`)."""
    kinds = channel_kinds()
    if not any(kinds[ch.kind].reminder is not None and getattr(ch, "owners", None) for ch in channels):
        return None
    day = now.astimezone(dt.timezone.utc).date()
    with reading(engine) as session:
        if stored.tried_on(session, day):
            return None
    if catalog is None:
        from auditbook.catalog.model import load_catalog
        catalog = load_catalog()
    return remind(engine, catalog, channels, day=day, within=within)


def reminders_sent(engine, day: Optional[dt.date] = None) -> list[dict]:
    """The reminders recorded (of one day, or all), newest first."""
    with reading(engine) as session:
        return stored.listing(session, day)
