"""CloudTrail write events on resources (the change behind a finding): the write events read
(cloudtrail_changes), the resources each touched (cloudtrail_change_resources), what input covered
which account, region and time (cloudtrail_coverage), and resource states found by their ARN

Revision ID: 0015
Revises: 0014
"""
import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('cloudtrail_changes',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.String(length=100), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('account', sa.String(length=12), nullable=False),
    sa.Column('region', sa.String(length=32), nullable=False),
    sa.Column('event_source', sa.String(length=100), nullable=False),
    sa.Column('event_name', sa.String(length=100), nullable=False),
    sa.Column('principal', sa.Text(), nullable=False),
    sa.Column('principal_type', sa.String(length=40), nullable=False),
    sa.Column('session_name', sa.String(length=100), nullable=False),
    sa.Column('source_ip', sa.String(length=100), nullable=False),
    sa.Column('user_agent', sa.Text(), nullable=False),
    sa.Column('error_code', sa.String(length=100), nullable=False),
    sa.Column('tags', sa.JSON(none_as_null=True), nullable=True),
    sa.Column('request', sa.JSON(none_as_null=True), nullable=True),
    sa.Column('source', sa.String(length=1300), nullable=False),
    sa.Column('simulated', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_cloudtrail_change_event', 'cloudtrail_changes', ['event_id'], unique=True)
    op.create_table('cloudtrail_change_resources',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('resource', sa.String(length=1024), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('event_id', sa.String(length=100), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_change_resource', 'cloudtrail_change_resources', ['resource', 'at', 'event_id'], unique=True)
    op.create_table('cloudtrail_coverage',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('account', sa.String(length=12), nullable=False),
    sa.Column('region', sa.String(length=32), nullable=False),
    sa.Column('first_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=1300), nullable=False),
    sa.Column('records', sa.Integer(), nullable=False),
    sa.Column('unread', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_cloudtrail_coverage', 'cloudtrail_coverage', ['account', 'region', 'first_at'], unique=False)
    op.create_index('ix_resource_arn', 'resource_states', ['arn'], unique=False)


def downgrade():
    op.drop_index('ix_resource_arn', table_name='resource_states')
    op.drop_index('ix_cloudtrail_coverage', table_name='cloudtrail_coverage')
    op.drop_table('cloudtrail_coverage')
    op.drop_index('ix_change_resource', table_name='cloudtrail_change_resources')
    op.drop_table('cloudtrail_change_resources')
    op.drop_index('ix_cloudtrail_change_event', table_name='cloudtrail_changes')
    op.drop_table('cloudtrail_changes')
