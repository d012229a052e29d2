"""initial tables

Revision ID: 0001
Revises: 
Create Date: 2026-11-27 09:02:48.882543
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('tasks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('n_pool', sa.Integer(), nullable=False),
    sa.Column('n_test', sa.Integer(), nullable=False),
    sa.Column('pool_positive_rate', sa.Float(), nullable=False),
    sa.Column('test_positive_rate', sa.Float(), nullable=False),
    sa.Column('has_weak_labels', sa.Boolean(), nullable=False),
    sa.Column('weak_label_accuracy', sa.Float(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tasks')),
    sa.UniqueConstraint('name', name=op.f('uq_tasks_name'))
    )
    op.create_table('allocations',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('request', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('study_name', sa.String(length=100), nullable=False),
    sa.Column('points_total', sa.Integer(), nullable=False),
    sa.Column('recommendation', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_allocations_task_id_tasks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_allocations')),
    sa.UniqueConstraint('study_name', name=op.f('uq_allocations_study_name'))
    )
    with op.batch_alter_table('allocations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_allocations_task_id'), ['task_id'], unique=False)

    op.create_table('examples',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('split', sa.String(length=8), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('label', sa.Integer(), nullable=False),
    sa.Column('weak_prob', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_examples_task_id_tasks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_examples')),
    sa.UniqueConstraint('task_id', 'split', 'position', name=op.f('uq_examples_task_id'))
    )
    with op.batch_alter_table('examples', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_examples_task_id'), ['task_id'], unique=False)

    op.create_table('trials',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('model', sa.String(length=200), nullable=False),
    sa.Column('method', sa.String(length=40), nullable=False),
    sa.Column('n_weak', sa.Integer(), nullable=False),
    sa.Column('n_gold', sa.Integer(), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('weak_labeler', sa.String(length=200), nullable=False),
    sa.Column('spec', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('result', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('test_accuracy', sa.Float(), nullable=True),
    sa.Column('selection_accuracy', sa.Float(), nullable=True),
    sa.Column('holdout_accuracy', sa.Float(), nullable=True),
    sa.Column('test_auroc', sa.Float(), nullable=True),
    sa.Column('wall_s', sa.Float(), nullable=True),
    sa.Column('worker', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_trials_task_id_tasks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trials')),
    sa.UniqueConstraint('key', name=op.f('uq_trials_key'))
    )
    with op.batch_alter_table('trials', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_trials_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_trials_task_id'), ['task_id'], unique=False)

    op.create_table('study_points',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('allocation_id', sa.String(length=36), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('method', sa.String(length=40), nullable=False),
    sa.Column('n_weak', sa.Integer(), nullable=False),
    sa.Column('n_gold', sa.Integer(), nullable=False),
    sa.Column('params', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('told', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['allocation_id'], ['allocations.id'], name=op.f('fk_study_points_allocation_id_allocations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_study_points')),
    sa.UniqueConstraint('allocation_id', 'number', name=op.f('uq_study_points_allocation_id'))
    )
    with op.batch_alter_table('study_points', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_study_points_allocation_id'), ['allocation_id'], unique=False)

    op.create_table('study_point_trials',
    sa.Column('point_id', sa.Integer(), nullable=False),
    sa.Column('trial_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['point_id'], ['study_points.id'], name=op.f('fk_study_point_trials_point_id_study_points'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['trial_id'], ['trials.id'], name=op.f('fk_study_point_trials_trial_id_trials'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('point_id', 'trial_id', name=op.f('pk_study_point_trials'))
    )
    with op.batch_alter_table('study_point_trials', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_study_point_trials_trial_id'), ['trial_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('study_point_trials', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_study_point_trials_trial_id'))

    op.drop_table('study_point_trials')
    with op.batch_alter_table('study_points', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_study_points_allocation_id'))

    op.drop_table('study_points')
    with op.batch_alter_table('trials', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_trials_task_id'))
        batch_op.drop_index(batch_op.f('ix_trials_status'))

    op.drop_table('trials')
    with op.batch_alter_table('examples', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_examples_task_id'))

    op.drop_table('examples')
    with op.batch_alter_table('allocations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_allocations_task_id'))

    op.drop_table('allocations')
    op.drop_table('tasks')
