"""Comparing a store created from the models with one migrated through every Alembic revision
(tests/unit/test_store_schema.py on SQLite, tests/integration/test_store_schema_postgres.py)."""
import json

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from auditbook.store.db import HEAD_REVISION, model_metadata, open_engine, upgrade


def schema(engine) -> dict:
    """Everything the inspector reports about every table. Columns are compared by name: SQLite
    appends a column a migration adds (evidence_reviews.version) where the model lists it earlier,
    and nothing in auditbook reads columns by position."""
    found = inspect(engine)
    dump = lambda items: sorted(json.dumps(i, sort_keys=True, default=str) for i in items)  # noqa: E731
    tables = {}
    for table in found.get_table_names():
        columns = {c["name"]: (str(c["type"]), c["nullable"], str(c.get("default"))) for c in found.get_columns(table)}
        tables[table] = {"columns": columns, "primary key": found.get_pk_constraint(table),
                         "foreign keys": dump(found.get_foreign_keys(table)), "indexes": dump(found.get_indexes(table)),
                         "unique": dump(found.get_unique_constraints(table)),
                         "checks": dump(found.get_check_constraints(table))}
    return tables


def version(engine) -> str:
    with engine.connect() as conn:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()


def assert_same_schema(created_url: str, migrated_url: str) -> None:
    created = open_engine(created_url)  # a new store: created from the models
    migrated = create_engine(migrated_url)
    upgrade(migrated)  # the same, replaying every revision from an empty database
    assert version(created) == version(migrated) == HEAD_REVISION
    created_schema, migrated_schema = schema(created), schema(migrated)
    assert sorted(created_schema) == sorted(migrated_schema)
    for table in created_schema:
        assert created_schema[table] == migrated_schema[table], table
    for engine in (created, migrated):  # and both are what the models declare
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), model_metadata()) == []
