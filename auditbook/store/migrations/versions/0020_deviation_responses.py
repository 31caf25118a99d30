"""deviation responses (issue 14 §5)

One deviation_responses row per deviation management has responded to: the deviation's stable id and
facts, whether it existed at the period's start (when overridden, with the reason), root cause, ticket,
compensating control, remediation and its date, the response, who recorded it, when, and a version.
No existing row changes.

Revision ID: 0020
Revises: 0019
"""
import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('deviation_responses',
    sa.Column('deviation_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('subject', sa.JSON(), nullable=False),
    sa.Column('existed_at_start', sa.Boolean(), nullable=True),
    sa.Column('existed_reason', sa.String(length=4000), nullable=True),
    sa.Column('root_cause', sa.String(length=4000), nullable=False),
    sa.Column('ticket', sa.String(length=200), nullable=True),
    sa.Column('compensating', sa.String(length=4000), nullable=True),
    sa.Column('remediation', sa.String(length=4000), nullable=True),
    sa.Column('remediated_on', sa.Date(), nullable=True),
    sa.Column('response', sa.String(length=4000), nullable=False),
    sa.Column('responded_by', sa.String(length=200), nullable=False),
    sa.Column('responded_role', sa.String(length=20), nullable=False),
    sa.Column('responded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('deviation_id')
    )


def downgrade():
    op.drop_table('deviation_responses')
