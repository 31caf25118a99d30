"""manual evidence reminders sent

One row per item an owner was reminded of on a day (or a reminder that failed): auditbook evidence
remind and the watch loop read it so that a reminder sent is not sent again the same day.

Revision ID: 0018
Revises: 0017
"""
import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('evidence_reminders',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('owner', sa.String(length=200), nullable=False),
    sa.Column('channel', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('criterion', sa.String(length=10), nullable=False),
    sa.Column('item', sa.String(length=200), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('error', sa.String(length=300), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_evidence_reminder_day', 'evidence_reminders', ['day', 'owner', 'channel'], unique=False)


def downgrade():
    op.drop_index('ix_evidence_reminder_day', table_name='evidence_reminders')
    op.drop_table('evidence_reminders')
