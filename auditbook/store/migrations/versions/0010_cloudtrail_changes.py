"""CloudTrail write events on resources (the change behind a finding)

Revision ID: 0010
Revises: 0009
"""
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    pass  # filled in by the change that uses it


def downgrade():
    pass
