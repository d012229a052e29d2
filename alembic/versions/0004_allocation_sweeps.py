"""allocation sweeps: allocations asked for together (one per budget) share a sweep id

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 12:00:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('allocations', schema=None) as batch_op:
        # Allocations made before sweeps existed belong to none.
        batch_op.add_column(sa.Column('sweep_id', sa.String(length=36), nullable=True))
        batch_op.create_index(batch_op.f('ix_allocations_sweep_id'), ['sweep_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('allocations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_allocations_sweep_id'))
        batch_op.drop_column('sweep_id')
