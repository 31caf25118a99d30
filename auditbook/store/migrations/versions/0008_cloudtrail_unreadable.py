"""cloudtrail: a log file that could not be read is noted with its etag and size (and the cap then),
so an unchanged bad file is reported from the store rather than fetched and inflated every cycle;
records stored before are redacted again under the wider CloudTrail rules (environment variables,
stack parameters, secret-named name/value pairs, requests logged as text)

On PostgreSQL the old row versions stay on disk until the table is vacuumed: run
`VACUUM FULL cloudtrail_matches` after this upgrade on a store that held CloudTrail records.

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None
BATCH = 500


def upgrade():
    op.add_column('cloudtrail_objects', sa.Column('unreadable', sa.JSON(), nullable=True))
    from auditbook.collect.evidence import canonical, digest, redact_cloudtrail
    matches = sa.table('cloudtrail_matches', sa.column('id', sa.Integer()), sa.column('record', sa.JSON()),
                       sa.column('record_sha256', sa.String()))
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":  # overwrite the unredacted bytes rather than leave them in free pages
        conn.exec_driver_sql("PRAGMA secure_delete = ON")
    last = 0
    while True:
        rows = conn.execute(sa.select(matches.c.id, matches.c.record).where(matches.c.id > last)
                            .order_by(matches.c.id).limit(BATCH)).all()
        if not rows:
            break
        for row_id, record in rows:
            clean = redact_cloudtrail(record)
            if clean != record:
                conn.execute(sa.update(matches).where(matches.c.id == row_id)
                             .values(record=clean, record_sha256=digest(canonical(clean))))
        last = rows[-1][0]


def downgrade():
    # rows of files never read go with the column: the code before it would take them for read
    op.execute("DELETE FROM cloudtrail_objects WHERE unreadable IS NOT NULL")
    with op.batch_alter_table('cloudtrail_objects') as batch:
        batch.drop_column('unreadable')
