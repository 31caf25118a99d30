"""incident category, impact, notification, root cause, lessons, action items, attachments

The post-mortem fields are new nullable columns of `incidents` (an incident stored before has none
yet); action items and attachments are tables of their own, an attachment's bytes a content-addressed
row of `documents` (shared with manual evidence).

Revision ID: 0016
Revises: 0015
"""
import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

POSTMORTEM_COLUMNS = (
    ('category', sa.String(length=40)),
    ('impact_systems', sa.Text()),
    ('impact_data', sa.Text()),
    ('customers_affected', sa.Integer()),
    ('customer_notice_required', sa.Boolean()),
    ('customers_notified_on', sa.Date()),
    ('regulator_notice_required', sa.Boolean()),
    ('regulator_notified_on', sa.Date()),
    ('root_cause', sa.Text()),
    ('lessons_learned', sa.Text()),
)


def upgrade():
    for name, kind in POSTMORTEM_COLUMNS:
        op.add_column('incidents', sa.Column(name, kind, nullable=True))
    op.create_table('incident_actions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.String(length=1000), nullable=False),
    sa.Column('owner', sa.String(length=200), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('done_by', sa.String(length=200), nullable=True),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_incident_actions_incident_id'), 'incident_actions', ['incident_id'], unique=False)
    op.create_table('incident_attachments',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('uploaded_by', sa.String(length=200), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], ),
    sa.ForeignKeyConstraint(['sha256'], ['documents.sha256'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_incident_attachments_incident_id'), 'incident_attachments', ['incident_id'],
                    unique=False)


def downgrade():
    op.drop_index(op.f('ix_incident_attachments_incident_id'), table_name='incident_attachments')
    op.drop_table('incident_attachments')
    op.drop_index(op.f('ix_incident_actions_incident_id'), table_name='incident_actions')
    op.drop_table('incident_actions')
    with op.batch_alter_table('incidents') as batch:  # SQLite drops columns by copying the table
        for name, _ in reversed(POSTMORTEM_COLUMNS):
            batch.drop_column(name)
