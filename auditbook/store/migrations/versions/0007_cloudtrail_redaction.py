"""cloudtrail: records stored redacted with the SHA-256 of what was stored; the gaps of each file read

On PostgreSQL the old row versions stay on disk until the table is vacuumed: run
`VACUUM FULL cloudtrail_matches` after this upgrade on a store that held CloudTrail records.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('cloudtrail_objects', sa.Column('gaps', sa.JSON(), nullable=True))
    op.add_column('cloudtrail_matches', sa.Column('record_sha256', sa.String(length=64), nullable=True))
    # records stored before redaction applied to CloudTrail: redact them now, and hash what is kept
    from auditbook.collect.evidence import canonical, digest, redact_cloudtrail
    matches = sa.table('cloudtrail_matches', sa.column('id', sa.Integer()), sa.column('record', sa.JSON()),
                       sa.column('record_sha256', sa.String()))
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":  # overwrite the unredacted bytes rather than leave them in free pages
        conn.exec_driver_sql("PRAGMA secure_delete = ON")
    for row_id, record in conn.execute(sa.select(matches.c.id, matches.c.record)).all():
        clean = redact_cloudtrail(record)
        conn.execute(sa.update(matches).where(matches.c.id == row_id)
                     .values(record=clean, record_sha256=digest(canonical(clean))))
    with op.batch_alter_table('cloudtrail_matches') as batch:
        batch.alter_column('record_sha256', existing_type=sa.String(length=64), nullable=False)


def downgrade():
    with op.batch_alter_table('cloudtrail_matches') as batch:
        batch.drop_column('record_sha256')
    with op.batch_alter_table('cloudtrail_objects') as batch:
        batch.drop_column('gaps')
