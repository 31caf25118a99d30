"""manual evidence approval (two-person rule)

One evidence_reviews row per manual_evidence row: submitted by whom, pending / approved / rejected by
a second person with a reason, the incident a per-incident document evidences, and a version. Documents
stored before this revision were never approved by anyone: they are migrated as `pending` (submitted
by their uploader), with a note saying so, and count for nothing until someone approves them.

Revision ID: 0019
Revises: 0018
"""
import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

MIGRATED = "stored before approvals existed (migration 0019): pending until a second person approves it"


def upgrade():
    op.create_table('evidence_reviews',
    sa.Column('evidence_id', sa.Integer(), nullable=False),
    sa.Column('submitted_by', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('decided_by', sa.String(length=200), nullable=True),
    sa.Column('decided_role', sa.String(length=20), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reason', sa.String(length=2000), nullable=True),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('note', sa.String(length=300), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['evidence_id'], ['manual_evidence.id'], ),
    sa.PrimaryKeyConstraint('evidence_id')
    )
    op.create_index(op.f('ix_evidence_reviews_status'), 'evidence_reviews', ['status'], unique=False)
    op.create_index(op.f('ix_evidence_reviews_incident_id'), 'evidence_reviews', ['incident_id'], unique=False)
    op.execute(sa.text(
        "INSERT INTO evidence_reviews (evidence_id, submitted_by, status, note, version) "
        "SELECT id, uploaded_by, 'pending', :note, 1 FROM manual_evidence").bindparams(note=MIGRATED))


def downgrade():
    op.drop_index(op.f('ix_evidence_reviews_incident_id'), table_name='evidence_reviews')
    op.drop_index(op.f('ix_evidence_reviews_status'), table_name='evidence_reviews')
    op.drop_table('evidence_reviews')
