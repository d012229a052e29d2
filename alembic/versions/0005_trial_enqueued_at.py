"""trials.enqueued_at: when a trial's message was last sent, so an unclaimed one can be sent again

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 12:00:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('trials', schema=None) as batch_op:
        # Trials stored before this column count from their creation (the sweep reads created_at).
        batch_op.add_column(sa.Column('enqueued_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('trials', schema=None) as batch_op:
        batch_op.drop_column('enqueued_at')
