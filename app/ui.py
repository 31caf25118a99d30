"""Shared by every page of the control room: who is using it (OIDC through st.login, a wall token,
or the local single-user mode), the store and catalog, cached reads, and safe rendering.

Untrusted strings (resource names, tags, notes, file content, error messages quoting them) are shown
with st.text, st.dataframe, st.json or st.code; inside markdown (st.caption, st.markdown, and the
alerts st.error / warning / info / success, which render markdown) through `md`, or `say`; inside an
HTML block through `h`."""
from __future__ import annotations

import datetime as dt
import html
import os
import re
from dataclasses import dataclass
from typing import Optional

import streamlit as st

from auditbook import auth
from auditbook.auth import (
    ROLES,
    Actor,
    PermissionDenied,
    SignInRefused,
    signed_in_actor,
    token_matches,
)

STATUS_COLOUR = {"PASS": "#1a7f37", "FAIL": "#cf222e", "ERROR": "#bf8700", "EXCEPTED": "#8250df",
                 "NEEDS_EVIDENCE": "#0969da", "NO_DATA": "#6e7781"}
TILE_COLOUR = {"green": "#1a7f37", "amber": "#bf8700", "red": "#cf222e", "grey": "#6e7781"}
_ASCII_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # every one may be backslash-escaped in markdown


def md(text) -> str:
    """Text shown literally inside markdown (st.markdown, st.caption, alerts): every ASCII punctuation
    character backslash-escaped, so no emphasis, link, image, HTML, heading, list or table can start
    (`O'Brien` stays `O'Brien`; `&` is escaped like the rest, so `&amp;` shows as typed)."""
    return _ASCII_PUNCTUATION.sub(r"\\\1", str(text))


def h(text) -> str:
    """Text safe inside an HTML block (st.markdown with unsafe_allow_html). Line breaks become
    character references too: a blank line would end the HTML block and start markdown again."""
    return html.escape(str(text), quote=True).replace("\r", "&#13;").replace("\n", "&#10;")


def say(kind: str, message) -> None:
    """An alert (error, warning, info or success) whose message is shown as plain text."""
    if kind not in ("error", "warning", "info", "success"):
        raise ValueError(f"unknown alert kind {kind!r}")
    getattr(st, kind)(md(message))


@dataclass
class Context:
    actor: Actor
    mode: str  # "oidc", "local" or "wall-token"
    db: str
    engine: object
    catalog: object


def secrets() -> dict:
    """st.secrets as a dict; {} when there is no secrets.toml at all (the local single-user mode). A
    secrets.toml that cannot be read is an error, never the local mode."""
    from streamlit.errors import StreamlitSecretNotFoundError

    from auditbook.web.server import secrets_files
    try:
        return {k: st.secrets[k] for k in st.secrets.keys()}
    except StreamlitSecretNotFoundError:
        if any(path.exists() for path in secrets_files()):
            raise
        return {}


@st.cache_resource(show_spinner=False)
def _engine(url: str):
    from auditbook.store.db import open_engine
    return open_engine(url, create=False)


@st.cache_resource(show_spinner=False)
def _catalog(path: Optional[str]):
    from pathlib import Path

    from auditbook.catalog.model import load_catalog
    return load_catalog(Path(path) if path else None)


def resolve() -> Optional[Context]:
    """Who is here, and with which role (the page is stopped at a sign-in prompt when nobody is yet).
    Every page after a sign-in starts with the SIMULATED label when the store's latest run is the
    demo's (labelled)."""
    from auditbook.store.db import resolve_url
    db = resolve_url(os.environ.get("AUDITBOOK_DB"))
    engine, catalog = _engine(db), _catalog(os.environ.get("AUDITBOOK_CATALOG") or None)
    found = secrets()
    settings = dict(found.get("auditbook", {}) or {})
    wall_token = st.query_params.get("wall_token")
    if wall_token and token_matches(wall_token, settings.get("wall_token_sha256")):
        return labelled(Context(Actor("wall screen", "wall"), "wall-token", db, engine, catalog))
    if "auth" in found:
        if not st.user.is_logged_in:
            st.title("auditbook control room")
            st.write("Sign in with your organisation's identity provider.")
            if st.button("Sign in"):
                st.login()
            st.stop()
        try:
            actor = signed_in_actor(st.user.to_dict(), settings)
        except SignInRefused as exc:
            say("error", exc)
            if st.button("Sign out"):
                st.logout()
            st.stop()
        return labelled(Context(actor, "oidc", db, engine, catalog))
    role = os.environ.get("AUDITBOOK_LOCAL_ROLE", "admin")
    if role not in ROLES:
        role = "viewer"
    return labelled(Context(Actor(f"{auth.login_name()} (local)", role), "local", db, engine, catalog))


def labelled(ctx: Context) -> Context:
    """Show the SIMULATED label above the page when the latest run is simulated (the wall view shows
    its own, larger); the context unchanged."""
    if st.query_params.get("view") != "wall" and ctx.actor.role != "wall":
        simulated_notice(latest_run(ctx.db))
    return ctx


def simulated_notice(run: Optional[dict]) -> None:
    """The SIMULATED label of a run from the demo (nothing for a real run)."""
    if run and run.get("simulated"):
        st.warning(f"SIMULATED — run {run['id']} and the data shown come from auditbook's demo "
                   f"({md(run.get('simulated_label') or 'simulated')}), not from a real AWS organisation.")


def current() -> Context:
    return st.session_state["ab_ctx"]


def require(action: str) -> Context:
    """Stop the page unless the current role may do `action` (the page's server-side guard; the
    core functions check again)."""
    ctx = current()
    if not ctx.actor.can(action):
        st.error(f"Your role ({ctx.actor.role}) may not {action.replace('_', ' ')}.")
        st.stop()
    return ctx


def denied(exc: PermissionDenied) -> None:
    say("error", exc)


def when(value: Optional[dt.datetime]) -> str:
    if value is None:
        return "—"
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def ago(value: Optional[dt.datetime], now: Optional[dt.datetime] = None) -> str:
    if value is None:
        return "never"
    seconds = int(((now or dt.datetime.now(dt.timezone.utc)) - value).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if abs(seconds) >= size:
            return f"{seconds // size} {unit} ago"
    return "just now"


def badge(status: str) -> str:
    colour = STATUS_COLOUR.get(status, "#6e7781")
    return (f'<span style="background:{colour};color:#fff;border-radius:4px;padding:1px 8px;font-weight:600">'
            f'{html.escape(status.replace("_", " ").lower())}</span>')


# -- cached reads (keyed by store and run: a new run invalidates them) ---------------------------

@st.cache_data(ttl=15, show_spinner=False)
def latest_run(db: str):
    from auditbook.history.posture import latest_run as read
    return read(_engine(db), _catalog(catalog_path()))  # its needs_evidence judged now (history/status.py)


@st.cache_data(max_entries=32, show_spinner=False)
def criteria(db: str, catalog_path: Optional[str], run_id: int):
    from auditbook.history.posture import criteria as read
    return read(_engine(db), _catalog(catalog_path), run_id)


@st.cache_data(max_entries=8, show_spinner=False)
def trend(db: str, catalog_path: Optional[str], run_id: int):
    from auditbook.history.posture import backfill_counts
    from auditbook.history.posture import trend as read
    backfill_counts(_engine(db), _catalog(catalog_path))
    return read(_engine(db), _catalog(catalog_path))


@st.cache_data(max_entries=64, show_spinner=False)
def failing(db: str, catalog_path: Optional[str], run_id: int, criterion: str):
    from auditbook.history.posture import failing as read
    return read(_engine(db), _catalog(catalog_path), run_id, criterion)


def catalog_path() -> Optional[str]:
    return os.environ.get("AUDITBOOK_CATALOG") or None


def exceptions_path() -> Optional[str]:
    """The exception register `auditbook app --exceptions` named (None: exceptions.yaml here, if any)."""
    return os.environ.get("AUDITBOOK_EXCEPTIONS") or None


def staleness_hours(engine) -> float:
    from auditbook.monitor.settings import get
    return float(get(engine, "wall")["stale_after_hours"])


# -- the posture for analysts: filters, changes, account names (cached by store, run and filters) --

GLYPH = {"green": ("✓", "OK"), "amber": ("!", "ATTENTION"), "red": ("✕", "FAILING"),
         "grey": ("–", "NO MATCH")}  # shape and text, not only colour; grey: no finding matches the filters
SEVERITY_ORDER = ("critical", "high", "medium", "low")


@st.cache_data(max_entries=8, show_spinner=False)
def _account_names(db: str, run_id: int) -> dict:
    from auditbook.history.posture_filters import account_names as read
    return read(_engine(db))


def account_names(db: str) -> dict[str, str]:
    """{account id: name} from the runs' identities (Organizations or the accounts file), read again
    when a new run is stored."""
    run = latest_run(db)
    return _account_names(db, run["id"]) if run else {}


def account_label(account: Optional[str], names: dict[str, str]) -> str:
    """An account id with its name, as text: `123456789012 · production` (escape it for the element)."""
    if not account:
        return ""
    name = names.get(account)
    return f"{account} · {name}" if name else account


@st.cache_data(max_entries=8, show_spinner=False)
def _tags_read(db: str, run_id: int) -> int:
    from auditbook.history.posture_filters import index_tags
    return index_tags(_engine(db))  # the tags of records stored since the last look (once per record)


@st.cache_data(max_entries=8, show_spinner=False)
def _filter_values(db: str, run_id: int, tags_complete: bool) -> dict:
    from auditbook.history.posture_filters import filter_values as read
    return read(_engine(db), run_id)


def filter_values(db: str, run_id: int) -> dict:
    """The posture filters' choices in the run, after reading the tags of new records (a busy store
    is said, and the tags already read are offered)."""
    from auditbook.history.posture_filters import TagsBusy
    try:
        _tags_read(db, run_id)
    except TagsBusy:
        say("warning", "The tags of the newest records could not be read now (the store is busy storing a "
                       "run): the tag filter offers the tags read before.")
        return _filter_values(db, run_id, False)
    return _filter_values(db, run_id, True)


@st.cache_data(max_entries=64, show_spinner=False)
def filtered_criteria(db: str, catalog_path: Optional[str], run_id: int, flt: tuple, needs: tuple) -> list:
    from auditbook.history.posture_filters import Filters, criteria
    return criteria(_engine(db), _catalog(catalog_path), run_id, Filters(*flt), set(needs))


@st.cache_data(max_entries=64, show_spinner=False)
def filtered_failing(db: str, catalog_path: Optional[str], run_id: int, criterion: str, flt: tuple) -> list:
    from auditbook.history.posture_filters import Filters, failing
    return failing(_engine(db), _catalog(catalog_path), run_id, criterion, Filters(*flt))


@st.cache_data(max_entries=32, show_spinner=False)
def changes(db: str, a: int, b: int, flt: tuple) -> dict:
    from auditbook.history.posture_filters import Filters
    from auditbook.history.posture_filters import changes as read
    return read(_engine(db), a, b, Filters(*flt))


@st.cache_data(max_entries=16, show_spinner=False)
def baseline(db: str, run_id: int, since: Optional[dt.date]) -> Optional[dict]:
    from auditbook.history.posture_filters import baseline as read
    return read(_engine(db), run_id, since)


@st.cache_data(max_entries=8, show_spinner=False)
def wall_tiles(db: str, catalog_path: Optional[str], run_id: int) -> list:
    from auditbook.history.posture import wall_tiles as read
    return read(_engine(db), _catalog(catalog_path), run_id)


def timeline_links(frame, column: str = "resource") -> dict:
    """Add a `timeline` column to a table of resources (each row's link to its resource timeline page;
    with the resource type when the table has one) and return the column_config showing it as a link."""
    from links import resource_link
    types = frame["resource_type"] if "resource_type" in frame else [None] * len(frame)
    frame["timeline"] = [resource_link(arn, rtype) if arn else None for arn, rtype in zip(frame[column], types)]
    return {"timeline": st.column_config.LinkColumn("timeline", display_text="timeline")}


def url_value(name: str, allowed: list) -> Optional[str]:
    """A filter's value from the page's address (?name=…), if it is one of `allowed`; a value that is
    not is reported (as text) and dropped from the address."""
    value = st.query_params.get(name)
    if value is None or value in allowed:
        return value
    say("warning", f"The address asks for {name} {value!r}, which is not in this run: ignored.")
    del st.query_params[name]
    return None


def url_values(name: str, allowed: list) -> list[str]:
    """url_value for a filter that takes several values (?name=a&name=b)."""
    values = st.query_params.get_all(name)
    kept = [v for v in values if v in allowed]
    if len(kept) != len(values):
        say("warning", f"The address asks for {name} {[v for v in values if v not in allowed]!r}, "
                       "not in this run: ignored.")
        st.query_params[name] = kept
    return kept


def keep_in_url(name: str, value) -> None:
    """Write a filter's value into the page's address (a view can be shared); remove it when empty."""
    if value in (None, "", [], ()):
        if name in st.query_params:
            del st.query_params[name]
    elif st.query_params.get_all(name) != ([str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]):
        st.query_params[name] = [str(v) for v in value] if isinstance(value, (list, tuple)) else str(value)
