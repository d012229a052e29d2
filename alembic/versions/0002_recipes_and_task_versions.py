"""recipes and task versions on trials; weak-label facts and version on tasks

A built-in task rebuilt without its shortcuts is the same name with a new version: trials keep the
version they were trained on, so the frontier reads only those of the task's current version.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 06:00:00
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    with op.batch_alter_table('tasks') as batch:
        batch.add_column(sa.Column('version', sa.Integer(), server_default='1', nullable=False))
        batch.add_column(sa.Column('weak_labels', JSON, nullable=True))
    with op.batch_alter_table('trials') as batch:
        # Trials stored before recipes existed have none: their params are in their spec.
        batch.add_column(sa.Column('recipe', sa.String(length=40), nullable=True))
        batch.add_column(sa.Column('task_version', sa.Integer(), server_default='1', nullable=False))
        batch.create_index(batch.f('ix_trials_task_id_task_version'), ['task_id', 'task_version'])


def downgrade() -> None:
    with op.batch_alter_table('trials') as batch:
        batch.drop_index(batch.f('ix_trials_task_id_task_version'))
        batch.drop_column('task_version')
        batch.drop_column('recipe')
    with op.batch_alter_table('tasks') as batch:
        batch.drop_column('weak_labels')
        batch.drop_column('version')
