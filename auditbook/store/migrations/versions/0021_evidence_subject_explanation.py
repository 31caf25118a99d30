"""manual evidence: the subject of a per-event document and the explanation of a flagged one (issue 14 §2)

Three nullable columns on evidence_reviews: `subject` (the change — CloudTrail event id or ticket — or
the account a per-change / per-account document evidences), `explanation` (why a document flagged as a
late upload or backdated came late: its submitter's, approved with it) and `explained_at`. No existing
row changes: a flagged document approved before this revision has no explanation, so it no longer
covers its period until one is submitted again with an explanation (docs/manual-evidence.md).

Revision ID: 0021
Revises: 0020
"""
import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('evidence_reviews', sa.Column('subject', sa.String(length=200), nullable=True))
    op.add_column('evidence_reviews', sa.Column('explanation', sa.String(length=2000), nullable=True))
    op.add_column('evidence_reviews', sa.Column('explained_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('evidence_reviews') as batch:
        batch.drop_column('explained_at')
        batch.drop_column('explanation')
        batch.drop_column('subject')
