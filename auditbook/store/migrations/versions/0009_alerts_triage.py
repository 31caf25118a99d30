"""alert triage (assignee, notes, decision, reason), suppressions, triage targets

Revision ID: 0009
Revises: 0008
"""
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    pass  # filled in by the change that uses it


def downgrade():
    pass
