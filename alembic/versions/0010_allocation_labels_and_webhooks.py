"""Allocations a lead can find and a script can be told about: a label per allocation, an index for
listing by creation time, its callback URL with the delivery's state, and a webhook secret per team

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 03:10:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('allocations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('label', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('callback_url', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('callback_state', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('callback_attempts', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('callback_error', sa.Text(), nullable=True))
        batch_op.create_index(batch_op.f('ix_allocations_created_at'), ['created_at'], unique=False)
    op.create_table(
        'team_webhook_secrets',
        sa.Column('team', sa.String(length=64), nullable=False),
        sa.Column('secret', sa.String(length=128), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('team', name=op.f('pk_team_webhook_secrets')),
    )


def downgrade() -> None:
    op.drop_table('team_webhook_secrets')
    with op.batch_alter_table('allocations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_allocations_created_at'))
        for column in ('callback_error', 'callback_attempts', 'callback_state', 'callback_url', 'label'):
            batch_op.drop_column(column)
