"""cloudtrail: log files read, and the records that matched event rules

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('cloudtrail_objects',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('bucket', sa.String(length=255), nullable=False),
    sa.Column('key', sa.String(length=1024), nullable=False),
    sa.Column('etag', sa.String(length=100), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('records', sa.Integer(), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_cloudtrail_object', 'cloudtrail_objects', ['bucket', 'key'], unique=True)
    op.create_table('cloudtrail_matches',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('rule', sa.String(length=100), nullable=False),
    sa.Column('labels_key', sa.String(length=600), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('event_id', sa.String(length=100), nullable=False),
    sa.Column('record', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_cloudtrail_match_window', 'cloudtrail_matches', ['rule', 'labels_key', 'at'], unique=False)
    op.create_index('ix_cloudtrail_match_event', 'cloudtrail_matches', ['rule', 'event_id'], unique=True)


def downgrade():
    op.drop_index('ix_cloudtrail_match_event', table_name='cloudtrail_matches')
    op.drop_index('ix_cloudtrail_match_window', table_name='cloudtrail_matches')
    op.drop_table('cloudtrail_matches')
    op.drop_index('ix_cloudtrail_object', table_name='cloudtrail_objects')
    op.drop_table('cloudtrail_objects')
