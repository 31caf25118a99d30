"""scans started from the control room

Revision ID: 0012
Revises: 0011
"""
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    pass  # filled in by the change that uses it


def downgrade():
    pass
