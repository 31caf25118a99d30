"""Alembic environment: the connection is handed over by auditbook.store.db.upgrade()."""
from alembic import context

import auditbook.store.models_app_audit  # noqa: F401  (its tables are in Base.metadata)
import auditbook.store.models_deviations  # noqa: F401  (its tables are in Base.metadata)
import auditbook.store.models_evidence  # noqa: F401  (its tables are in Base.metadata)
import auditbook.store.models_workflow  # noqa: F401  (its tables are in Base.metadata)
from auditbook.store.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
