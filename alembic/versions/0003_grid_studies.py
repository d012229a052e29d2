"""grid studies: the paper's grid for a task, as one stored request and its plan of trials

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 12:00:00
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('grid_studies',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('request', JSON, nullable=False),
    sa.Column('points', JSON, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_grid_studies_task_id_tasks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_grid_studies'))
    )
    with op.batch_alter_table('grid_studies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grid_studies_task_id'), ['task_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_grid_studies_created_at'), ['created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('grid_studies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_grid_studies_created_at'))
        batch_op.drop_index(batch_op.f('ix_grid_studies_task_id'))
    op.drop_table('grid_studies')
