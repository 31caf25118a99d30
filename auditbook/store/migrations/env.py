"""Alembic environment: the connection is handed over by auditbook.store.db.upgrade()."""
from alembic import context

from auditbook.store.db import model_metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=model_metadata(), render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
