"""A store created from the models (store/db.py create_from_models) and one migrated through every
Alembic revision have the identical schema on PostgreSQL too (tests/store_schema.py compares them)."""
from tests.store_schema import assert_same_schema


def test_created_store_has_the_migrated_schema_postgres(postgres):
    assert_same_schema(postgres.database(), postgres.database())
