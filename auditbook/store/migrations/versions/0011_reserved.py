"""Reserved, empty: shipped as a no-op by the groundwork commit of issue 13 (c9b445f), so a store
opened by that code is stamped at this revision without any of issue 13's schema. The schema of
issue 13 is in 0014-0018, which every such store still runs.

Revision ID: 0011
Revises: 0010
"""
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
