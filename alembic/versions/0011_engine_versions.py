"""trials.engine_version and point_aggregates.engine_version: the engine that trained a trial (worker
engine spec.ENGINE_VERSION); only the current engine's trials are run and served. Every trial stored
before is version 1: kept, never served as current (as trials of an older task version).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 10:00:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

_POINT = ['task_id', 'task_version', 'model', 'method', 'weak_labeler', 'recipe', 'params_key', 'n_weak', 'n_gold']


def upgrade() -> None:
    with op.batch_alter_table('trials', schema=None) as batch_op:
        batch_op.add_column(sa.Column('engine_version', sa.Integer(), server_default='1', nullable=False))
    with op.batch_alter_table('point_aggregates', schema=None) as batch_op:
        batch_op.add_column(sa.Column('engine_version', sa.Integer(), server_default='1', nullable=False))
        batch_op.drop_constraint('uq_point_aggregates_point', type_='unique')
        batch_op.create_unique_constraint('uq_point_aggregates_point',
                                          [*_POINT[:2], 'engine_version', *_POINT[2:]])


def downgrade() -> None:
    with op.batch_alter_table('point_aggregates', schema=None) as batch_op:
        batch_op.drop_constraint('uq_point_aggregates_point', type_='unique')
        batch_op.create_unique_constraint('uq_point_aggregates_point', _POINT)
        batch_op.drop_column('engine_version')
    with op.batch_alter_table('trials', schema=None) as batch_op:
        batch_op.drop_column('engine_version')
