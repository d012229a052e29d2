"""Tasks of more than two classes: a task names its classes and stores each one's share of its pool
and test set; the binary positive rates become optional (a 5-class task has no "positive" class); an uploaded
example may carry its weak label as a distribution over the classes.
Binary tasks stored before keep their rows as they are: classes NULL means the classes "0" and "1".

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 05:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('classes', _json(), nullable=True))
        batch_op.add_column(sa.Column('pool_class_rates', _json(), nullable=True))
        batch_op.add_column(sa.Column('test_class_rates', _json(), nullable=True))
        batch_op.alter_column('pool_positive_rate', existing_type=sa.Float(), nullable=True)
        batch_op.alter_column('test_positive_rate', existing_type=sa.Float(), nullable=True)
    with op.batch_alter_table('examples', schema=None) as batch_op:
        # An uploaded task's weak labels as a distribution over its classes (K > 2); weak_prob stays binary.
        batch_op.add_column(sa.Column('weak_probs', _json(), nullable=True))


def downgrade() -> None:
    # A task of more than two classes cannot be stored by the older schema: refuse rather than lose it.
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT count(*) FROM tasks WHERE classes IS NOT NULL")).scalar():
        raise RuntimeError("tasks of more than two classes are stored: delete them before downgrading past 0014")
    with op.batch_alter_table('examples', schema=None) as batch_op:
        batch_op.drop_column('weak_probs')
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.alter_column('test_positive_rate', existing_type=sa.Float(), nullable=False)
        batch_op.alter_column('pool_positive_rate', existing_type=sa.Float(), nullable=False)
        batch_op.drop_column('test_class_rates')
        batch_op.drop_column('pool_class_rates')
        batch_op.drop_column('classes')
