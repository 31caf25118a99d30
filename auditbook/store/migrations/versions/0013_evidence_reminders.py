"""manual evidence reminders sent

Revision ID: 0013
Revises: 0012
"""
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    pass  # filled in by the change that uses it


def downgrade():
    pass
