"""Roles and what each may do. Every change goes through a core function that calls `authorize`
first, so a hidden button is never the only guard.

  viewer   read posture, alerts, incidents, evidence
  analyst  viewer + create and work incidents, acknowledge alerts, run containment runbooks
  admin    analyst + exceptions and settings
  auditor  read-only, with packets and evidence
  wall     the wall view only (a read-only token for the security-room screen)
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Optional

ROLES = ("viewer", "analyst", "admin", "auditor", "wall")

READ = {"view_posture", "view_alerts", "view_incidents", "view_evidence"}
PERMISSIONS: dict[str, set[str]] = {
    "viewer": READ,
    "analyst": READ | {"create_incident", "update_incident", "note_incident", "acknowledge_alert", "run_runbook"},
    "admin": READ | {"create_incident", "update_incident", "note_incident", "acknowledge_alert", "run_runbook",
                     "view_packets", "manage_exceptions", "manage_settings"},
    "auditor": READ | {"view_packets"},
    "wall": {"view_wall"},
}
for _role in ROLES:
    if _role != "wall":
        PERMISSIONS[_role] = PERMISSIONS[_role] | {"view_wall"}
ACTIONS = sorted(set().union(*PERMISSIONS.values()))


class PermissionDenied(Exception):
    def __init__(self, actor: "Actor", action: str):
        super().__init__(f"{actor.name} ({actor.role}) may not {action.replace('_', ' ')}")
        self.actor, self.action = actor, action


@dataclass(frozen=True)
class Actor:
    name: str
    role: str

    def can(self, action: str) -> bool:
        return action in PERMISSIONS.get(self.role, set())


def authorize(actor: Optional[Actor], action: str) -> None:
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    if actor is None or not actor.can(action):
        raise PermissionDenied(actor or Actor("anonymous", "none"), action)


def role_for(email: Optional[str], mapping: dict[str, list[str]], default: Optional[str] = "viewer") -> Optional[str]:
    """A signed-in user's role from the configured mapping {role: [emails or @domains]}; the most
    powerful match wins (admin > analyst > auditor > viewer)."""
    if not email:
        return None
    email = email.strip().lower()
    for role in ("admin", "analyst", "auditor", "viewer"):
        for entry in mapping.get(role, []) or []:
            entry = str(entry).strip().lower()
            if entry == email or (entry.startswith("@") and email.endswith(entry)):
                return role
    return default


def token_matches(given: Optional[str], expected_sha256: Optional[str]) -> bool:
    """The wall token is configured as its SHA-256, compared in constant time."""
    if not given or not expected_sha256:
        return False
    return hmac.compare_digest(hashlib.sha256(given.encode()).hexdigest(), expected_sha256.strip().lower())
