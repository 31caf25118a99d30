"""incident category, impact, notification, root cause, lessons, action items, attachments

Revision ID: 0011
Revises: 0010
"""
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    pass  # filled in by the change that uses it


def downgrade():
    pass
