"""evidence on S3 with Object Lock (issue 16 §3): where an API response or a document is kept

`evidence` and `documents` get three nullable columns: `object_url` (s3://bucket/key of the
content-addressed, COMPLIANCE-locked object), `object_version` (the S3 VersionId written, never the
latest) and `retain_until` (the retention set on it). A row with an object_url keeps an empty body
(`evidence.body`, `documents.content`: b''): the columns stay NOT NULL, so no table is copied (the
evidence table is the store's largest, and `documents` is referenced by manual_evidence). No existing
row changes: stores keep the bodies they hold, and both kinds are read (store/evidence.py,
store/manual_evidence.py).

Revision ID: 0023
Revises: 0022
"""
import sqlalchemy as sa
from alembic import op

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

TABLES = ('evidence', 'documents')


def upgrade():
    for table in TABLES:
        op.add_column(table, sa.Column('object_url', sa.Text(), nullable=True))
        op.add_column(table, sa.Column('object_version', sa.String(length=1024), nullable=True))
        op.add_column(table, sa.Column('retain_until', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    """Refused while any row is kept in the evidence bucket only: its body is not in the store."""
    bind = op.get_bind()
    for table in TABLES:
        if bind.execute(sa.text(f'SELECT COUNT(*) FROM {table} WHERE object_url IS NOT NULL')).scalar():
            raise RuntimeError(f'{table}: rows are kept in the evidence bucket only; a downgrade would lose them')
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column('retain_until')
            batch.drop_column('object_version')
            batch.drop_column('object_url')
