"""allocations.callback_claimed_at: when a callback's sender claimed it, so a sweep can tell a
delivery in progress from one whose sender died (allocations.webhooks.reclaim_stale).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 16:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('allocations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('callback_claimed_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('allocations', schema=None) as batch_op:
        batch_op.drop_column('callback_claimed_at')
