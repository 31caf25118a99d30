"""Settings kept in the store (`settings`: a key and a JSON value). What the keys mean and what
values are valid is the caller's business (auditbook.monitor.settings, the LookupEvents checkpoint)."""
from __future__ import annotations

from typing import Optional

from sqlalchemy import insert, select, update

from auditbook.store.models import Setting


def read(session, key: str) -> Optional[dict]:
    """The stored value of `key`, or None when it was never set."""
    return session.scalar(select(Setting.value).where(Setting.key == key))


def write(session, key: str, value: dict) -> None:
    """Set `key` to `value` (created the first time)."""
    if read(session, key) is None:
        session.execute(insert(Setting).values(key=key, value=value))
    else:
        session.execute(update(Setting).where(Setting.key == key).values(value=value)
                        .execution_options(synchronize_session=False))


def create_if_missing(session, key: str, value: dict) -> None:
    """Set `key` to `value` only when it has no value yet."""
    if read(session, key) is None:
        session.execute(insert(Setting).values(key=key, value=value))
