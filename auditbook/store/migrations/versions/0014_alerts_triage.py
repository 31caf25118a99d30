"""alert triage (assignee, notes, decision, reason), suppressions, triage targets

Alerts gain their triage columns (who it is assigned to, the decision and its reason, who triaged it
and when, when a missed triage target was escalated, when it started firing in auditbook — the
triage clock's start, first_seen for the alerts already stored —, the incident it became, the
suppression that silences it); `alert_suppressions` holds the suppressions. Notes and every change are audit-trail
entries; the triage targets are a setting (`settings`, key `triage`).

Revision ID: 0014
Revises: 0013
"""
import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

ALERT_COLUMNS = (
    ('assignee', sa.String(length=200)),
    ('triage_decision', sa.String(length=24)),
    ('triage_reason', sa.String(length=2000)),
    ('triaged_by', sa.String(length=200)),
    ('triaged_at', sa.DateTime(timezone=True)),
    ('triage_escalated_at', sa.DateTime(timezone=True)),
    ('fired_at', sa.DateTime(timezone=True)),
    ('incident_id', sa.Integer()),
    ('suppression_id', sa.Integer()),
)


def upgrade():
    with op.batch_alter_table('alerts') as batch:
        for name, kind in ALERT_COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))
        batch.create_index('ix_alert_rule', ['rule'], unique=False)
    op.execute("UPDATE alerts SET fired_at = first_seen WHERE state <> 'pending'")  # the best known before
    # the alerts already stored predate the triage targets: their time to triage counts, but they are
    # not escalated all at once by the first watch cycle after the upgrade (one page each)
    op.get_bind().execute(sa.text("UPDATE alerts SET triage_escalated_at = :now WHERE state <> 'pending'"),
                          {"now": dt.datetime.now(dt.timezone.utc)})
    op.create_table('alert_suppressions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('rule', sa.String(length=100), nullable=False),
    sa.Column('labels', sa.JSON(), nullable=False),
    sa.Column('until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.String(length=2000), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lifted_by', sa.String(length=200), nullable=True),
    sa.Column('lifted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_alert_suppression_rule', 'alert_suppressions', ['rule', 'until'], unique=False)


def downgrade():
    op.drop_index('ix_alert_suppression_rule', table_name='alert_suppressions')
    op.drop_table('alert_suppressions')
    with op.batch_alter_table('alerts') as batch:
        batch.drop_index('ix_alert_rule')
        for name, _kind in reversed(ALERT_COLUMNS):
            batch.drop_column(name)
