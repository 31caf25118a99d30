"""Shared by every page of the control room: who is using it (OIDC through st.login, a wall token,
or the local single-user mode), the store and catalog, cached reads, and safe rendering.

Untrusted strings (resource names, tags, notes, file content, error messages quoting them) are shown
with st.text, st.dataframe, st.json or st.code; inside markdown (st.caption, st.markdown, and the
alerts st.error / warning / info / success, which render markdown) through `md`, or `say`; inside an
HTML block through `h`."""
from __future__ import annotations

import datetime as dt
import getpass
import html
import os
import re
from dataclasses import dataclass
from typing import Optional

import streamlit as st

from auditbook.auth import Actor, PermissionDenied, SignInRefused, signed_in_actor, token_matches

STATUS_COLOUR = {"PASS": "#1a7f37", "FAIL": "#cf222e", "ERROR": "#bf8700", "EXCEPTED": "#8250df",
                 "NEEDS_EVIDENCE": "#0969da", "NO_DATA": "#6e7781"}
TILE_COLOUR = {"green": "#1a7f37", "amber": "#bf8700", "red": "#cf222e"}
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
    """Who is here, and with which role. None: the page has been replaced by a sign-in prompt."""
    from auditbook.store.db import resolve_url
    db = resolve_url(os.environ.get("AUDITBOOK_DB"))
    engine, catalog = _engine(db), _catalog(os.environ.get("AUDITBOOK_CATALOG") or None)
    found = secrets()
    settings = dict(found.get("auditbook", {}) or {})
    wall_token = st.query_params.get("wall_token")
    if wall_token and token_matches(wall_token, settings.get("wall_token_sha256")):
        return Context(Actor("wall screen", "wall"), "wall-token", db, engine, catalog)
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
        return Context(actor, "oidc", db, engine, catalog)
    role = os.environ.get("AUDITBOOK_LOCAL_ROLE", "admin")
    if role not in ("viewer", "analyst", "admin", "auditor", "wall"):
        role = "viewer"
    return Context(Actor(f"{getpass.getuser()} (local)", role), "local", db, engine, catalog)


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
    return read(_engine(db))


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


def staleness_hours(engine) -> float:
    from auditbook.monitor.settings import get
    return float(get(engine, "wall")["stale_after_hours"])
