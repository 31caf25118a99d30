"""scans started from the control room (scan_requests: one at a time, through a unique slot), and the
environment and owner tags of stored records (record_tags, tagged_records) for the posture filters

Revision ID: 0017
Revises: 0016
"""
import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('scan_requests',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('slot', sa.Integer(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('requested_by', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('planned', sa.Integer(), nullable=True),
    sa.Column('done', sa.Integer(), nullable=False),
    sa.Column('current', sa.String(length=200), nullable=True),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('error', sa.String(length=2000), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_scan_request_slot', 'scan_requests', ['slot'], unique=True)
    op.create_table('record_tags',
    sa.Column('record_sha256', sa.String(length=64), nullable=False),
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('value', sa.String(length=256), nullable=False),
    sa.PrimaryKeyConstraint('record_sha256', 'key')
    )
    op.create_index('ix_record_tag', 'record_tags', ['key', 'value'], unique=False)
    op.create_table('tagged_records',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('sha256')
    )


def downgrade():
    op.drop_table('tagged_records')
    op.drop_index('ix_record_tag', table_name='record_tags')
    op.drop_table('record_tags')
    op.drop_index('ix_scan_request_slot', table_name='scan_requests')
    op.drop_table('scan_requests')
