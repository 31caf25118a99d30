"""packets: audit packets built from the store, with their manifest hash and chain

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('packets',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('period_label', sa.String(length=40), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('period_end', sa.Date(), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('manifest_sha256', sa.String(length=64), nullable=False),
    sa.Column('previous_manifest_sha256', sa.String(length=64), nullable=True),
    sa.Column('signer_algorithm', sa.String(length=40), nullable=False),
    sa.Column('key_id', sa.Text(), nullable=False),
    sa.Column('built_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('run_ids', sa.JSON(), nullable=False),
    sa.Column('failed', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_packets_manifest_sha256'), 'packets', ['manifest_sha256'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_packets_manifest_sha256'), table_name='packets')
    op.drop_table('packets')
