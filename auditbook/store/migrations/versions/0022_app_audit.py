"""application audit events from CloudWatch Logs (issue 15): the events read (app_audit_events, one
row per log group event id) and each read of a log group over a time range (app_audit_reads: covered,
or a coverage gap with its reason)

Revision ID: 0022
Revises: 0021
"""
import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('app_audit_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('source', sa.String(length=600), nullable=False),
    sa.Column('account', sa.String(length=12), nullable=False),
    sa.Column('region', sa.String(length=32), nullable=False),
    sa.Column('log_group', sa.String(length=512), nullable=False),
    sa.Column('event_id', sa.String(length=100), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('event_type', sa.String(length=100), nullable=False),
    sa.Column('user', sa.String(length=512), nullable=False),
    sa.Column('source_ip', sa.String(length=100), nullable=False),
    sa.Column('user_agent', sa.String(length=1024), nullable=False),
    sa.Column('action', sa.String(length=200), nullable=False),
    sa.Column('outcome', sa.String(length=100), nullable=False),
    sa.Column('resource', sa.String(length=1024), nullable=False),
    sa.Column('record', sa.JSON(none_as_null=True), nullable=True),
    sa.Column('record_sha256', sa.String(length=64), nullable=False),
    sa.Column('unread', sa.String(length=500), nullable=True),
    sa.Column('ingested_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_app_audit_event', 'app_audit_events', ['source', 'event_id'], unique=True)
    op.create_index('ix_app_audit_event_at', 'app_audit_events', ['at'], unique=False)
    op.create_table('app_audit_reads',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('source', sa.String(length=600), nullable=False),
    sa.Column('account', sa.String(length=12), nullable=False),
    sa.Column('region', sa.String(length=32), nullable=False),
    sa.Column('log_group', sa.String(length=512), nullable=False),
    sa.Column('first_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('events', sa.Integer(), nullable=False),
    sa.Column('unread', sa.Integer(), nullable=False),
    sa.Column('error', sa.String(length=1000), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_app_audit_read', 'app_audit_reads', ['source', 'last_at'], unique=False)


def downgrade():
    op.drop_index('ix_app_audit_read', table_name='app_audit_reads')
    op.drop_table('app_audit_reads')
    op.drop_index('ix_app_audit_event_at', table_name='app_audit_events')
    op.drop_index('ix_app_audit_event', table_name='app_audit_events')
    op.drop_table('app_audit_events')
