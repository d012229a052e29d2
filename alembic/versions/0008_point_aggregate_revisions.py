"""Point aggregates' revision: the task results_version that last wrote each row, so a process that
keeps a task's points re-reads only the rows written since

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 21:00:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing rows get 0: no process keeps points read before this column existed.
    with op.batch_alter_table('point_aggregates', schema=None) as batch_op:
        batch_op.add_column(sa.Column('revision', sa.Integer(), server_default='0', nullable=False))
        batch_op.create_index('ix_point_aggregates_task_id_revision', ['task_id', 'task_version', 'revision'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('point_aggregates', schema=None) as batch_op:
        batch_op.drop_index('ix_point_aggregates_task_id_revision')
        batch_op.drop_column('revision')
