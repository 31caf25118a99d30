"""Roles and what each may do. Every change goes through a core function that calls `authorize`
first, so a hidden button is never the only guard.

  viewer   read posture, alerts, incidents, evidence
  analyst  viewer + create and work incidents, acknowledge, triage and suppress alerts, run
           containment runbooks, submit manual evidence documents, prepare sign-offs, respond to
           deviations
  admin    analyst + exceptions, settings, starting a scan from the control room, approving
           manual evidence, reviewing sign-offs, drawing samples
  approver viewer + approve or reject manual evidence documents (the second person of the two-person
           rule: never the one who submitted the document) and review sign-offs
  auditor  read-only, with packets and evidence; draws samples (recorded)
  wall     the wall view only (a read-only token for the security-room screen)
"""
from __future__ import annotations

import hashlib
import hmac
import os
import pwd
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

from auditbook.errors import UserError

MAX_ACTOR = 200
FRONT_ENDS = ("cli", "local")  # the suffixes the command line and the local control room add to a login name


def login_name() -> str:
    """The operating-system account running this process (its passwd entry, else "uid N"), for the
    command line and the local control room: never LOGNAME / USER, which anyone can set."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # no passwd entry (some containers)
        return f"uid {os.getuid()}"


def person(name: str) -> str:
    """A name as the two-person rules compare it: one person whatever the case, spacing or front end —
    'Alice (cli)', 'alice (local)' and ' alice ' are the same person."""
    name = " ".join((name or "").split()).casefold()
    for front_end in FRONT_ENDS:
        if name.endswith(f" ({front_end})"):
            return name[:-len(front_end) - 3]
    return name
ROLES = ("viewer", "analyst", "approver", "admin", "auditor", "wall")
SIGN_IN_ROLES = ("admin", "approver", "analyst", "auditor", "viewer")  # roles a sign-in can map to, most powerful first

READ = {"view_posture", "view_alerts", "view_incidents", "view_evidence"}
ANALYST = {"create_incident", "update_incident", "note_incident", "acknowledge_alert", "run_runbook",
           "triage_alert", "suppress_alerts", "submit_evidence", "prepare_signoff", "respond_deviation"}
PERMISSIONS: dict[str, set[str]] = {
    "viewer": READ,
    "analyst": READ | ANALYST,
    "approver": READ | {"approve_evidence", "review_signoff"},
    "admin": READ | ANALYST | {"view_packets", "manage_exceptions", "manage_settings", "start_scan",
                               "approve_evidence", "review_signoff", "draw_sample"},
    "auditor": READ | {"view_packets", "draw_sample"},
    "wall": {"view_wall"},
}
for _role in ROLES:
    if _role != "wall":
        PERMISSIONS[_role] = PERMISSIONS[_role] | {"view_wall"}
ACTIONS = sorted(set().union(*PERMISSIONS.values()))


class PermissionDenied(UserError):
    """A role may not do something: one line, exit 2 on the command line, an error on the page."""

    def __init__(self, actor: "Actor", action: str):
        super().__init__(f"{actor.name} ({actor.role}) may not {action.replace('_', ' ')}")
        self.actor, self.action = actor, action


@dataclass(frozen=True)
class Actor:
    name: str
    role: str

    def __post_init__(self):
        if not self.name or len(self.name) > MAX_ACTOR:  # the audit trail's actor column holds 200 characters
            raise UserError(f"user name: {len(self.name)} characters; 1 to {MAX_ACTOR} are allowed")

    def can(self, action: str) -> bool:
        return action in PERMISSIONS.get(self.role, set())


def authorize(actor: Optional[Actor], action: str) -> None:
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    if actor is None or not actor.can(action):
        raise PermissionDenied(actor or Actor("anonymous", "none"), action)


def role_for(email: Optional[str], mapping: dict[str, list[str]], default: Optional[str] = "viewer") -> Optional[str]:
    """A signed-in user's role from the configured mapping {role: [emails or @domains]}; the most
    powerful match wins (admin > approver > analyst > auditor > viewer). `@example.com` matches exactly the
    domain after the address's last `@` (not `evilexample.com`, `example.com.evil` or subdomains)."""
    if not email:
        return None
    email = email.strip().lower()
    domain = email.rpartition("@")[2] if "@" in email else None
    for role in SIGN_IN_ROLES:
        for entry in mapping.get(role, []) or []:
            entry = str(entry).strip().lower()
            if entry == email or (domain is not None and entry == "@" + domain):
                return role
    return default



class SignInRefused(Exception):
    """Why a signed-in identity gets no role (one line, shown to the user as plain text)."""


def _is_true(claim) -> bool:
    return claim is True or (isinstance(claim, str) and claim.strip().lower() == "true")  # some IdPs send "true"


def verified_email(claims: Mapping, trusted_issuers: Sequence[str] = ()) -> str:
    """The e-mail address of an OpenID Connect identity, only if the identity provider vouches for it:
    `email_verified` true, or absent from an issuer named in `trusted_issuers` (one known not to send
    the claim). An explicit `email_verified: false` is refused whatever the issuer."""
    email = claims.get("email")
    if not isinstance(email, str) or not email.strip():
        raise SignInRefused("Your identity provider sent no e-mail address, so auditbook cannot give you a role.")
    verified = claims.get("email_verified")
    if _is_true(verified) or (verified is None and str(claims.get("iss", "")) in set(trusted_issuers)):
        return email.strip()
    raise SignInRefused("Your identity provider does not vouch that your e-mail address is verified, so "
                        "auditbook gives it no role. Verify it with your identity provider, then sign in again.")


def signed_in_actor(claims: Mapping, settings: Mapping) -> Actor:
    """The actor for an OpenID Connect sign-in, from [auditbook] settings: roles, default_role and
    issuers_without_email_verified."""
    trusted = settings.get("issuers_without_email_verified") or []
    email = verified_email(claims, [trusted] if isinstance(trusted, str) else [str(t) for t in trusted])
    default = settings.get("default_role")
    if default is not None and default not in SIGN_IN_ROLES:
        raise SignInRefused(f"[auditbook] default_role: {default!r} is not one of {', '.join(SIGN_IN_ROLES)}.")
    role = role_for(email, dict(settings.get("roles", {}) or {}), default=default)
    if role is None:
        raise SignInRefused("Your account has no role in auditbook. Ask an administrator to add you.")
    return Actor(email, role)


def token_matches(given: Optional[str], expected_sha256: Optional[str]) -> bool:
    """The wall token is configured as its SHA-256, compared in constant time."""
    if not given or not expected_sha256:
        return False
    return hmac.compare_digest(hashlib.sha256(given.encode()).hexdigest(), expected_sha256.strip().lower())
