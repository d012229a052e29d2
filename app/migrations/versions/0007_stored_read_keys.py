"""Reads from aggregates: trials' recipe label and params digest, per-point aggregates, tasks'
results version, allocations' request key

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 17:30:00
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

BATCH = 5000


def upgrade() -> None:
    with op.batch_alter_table('trials', schema=None) as batch_op:
        batch_op.add_column(sa.Column('recipe_label', sa.String(length=400), server_default='', nullable=False))
        batch_op.add_column(sa.Column('params_key', sa.String(length=16), server_default='', nullable=False))
        batch_op.add_column(sa.Column('aggregated', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_index('ix_trials_task_id_recipe_label', ['task_id', 'recipe_label'], unique=False)
        batch_op.create_index('ix_trials_unaggregated', ['task_id', 'task_version'], unique=False,
                              postgresql_where=sa.text('NOT aggregated'), sqlite_where=sa.text('NOT aggregated'))
    op.create_table(
        'point_aggregates',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('task_id', sa.Integer(), nullable=False),
        sa.Column('task_version', sa.Integer(), nullable=False),
        sa.Column('recipe_label', sa.String(length=400), nullable=False),
        sa.Column('model', sa.String(length=200), nullable=False),
        sa.Column('method', sa.String(length=40), nullable=False),
        sa.Column('weak_labeler', sa.String(length=200), nullable=False),
        sa.Column('recipe', sa.String(length=40), nullable=False),
        sa.Column('params_key', sa.String(length=16), nullable=False),
        sa.Column('n_weak', sa.Integer(), nullable=False),
        sa.Column('n_gold', sa.Integer(), nullable=False),
        sa.Column('first_trial_id', sa.Integer(), nullable=False),
        sa.Column('n_trials', sa.Integer(), nullable=False),
        sa.Column('test_mean', sa.Float(), nullable=False),
        sa.Column('selection_mean', sa.Float(), nullable=False),
        sa.Column('holdout_mean', sa.Float(), nullable=False),
        sa.Column('trials', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
        sa.Column('seed_variance', sa.Float(), nullable=True),
        sa.Column('example_variance', sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_point_aggregates_task_id_tasks'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_point_aggregates')),
        sa.UniqueConstraint('task_id', 'task_version', 'model', 'method', 'weak_labeler', 'recipe', 'params_key',
                            'n_weak', 'n_gold', name='uq_point_aggregates_point'),
    )
    op.create_index('ix_point_aggregates_task_id_recipe_label', 'point_aggregates',
                    ['task_id', 'task_version', 'recipe_label'], unique=False)
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('results_version', sa.Integer(), server_default='0', nullable=False))
    with op.batch_alter_table('allocations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('request_key', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_allocations_request_key'), ['request_key'], unique=False)
    _fill_recipe_keys()


def _fill_recipe_keys() -> None:
    """Existing trials get the keys new ones are created with (the code's own functions)."""
    from app.services import recipe_keys

    bind = op.get_bind()
    trials = sa.table('trials', sa.column('id', sa.Integer), sa.column('recipe', sa.String),
                      sa.column('spec', sa.JSON), sa.column('recipe_label', sa.String),
                      sa.column('params_key', sa.String))
    last = 0
    while True:
        rows = bind.execute(sa.select(trials.c.id, trials.c.recipe, trials.c.spec)
                            .where(trials.c.id > last).order_by(trials.c.id).limit(BATCH)).all()
        if not rows:
            return
        for trial_id, recipe, spec in rows:
            params = (spec or {}).get('params', {}) if isinstance(spec, dict) else {}
            bind.execute(trials.update().where(trials.c.id == trial_id).values(
                recipe_label=recipe_keys.label(recipe, params), params_key=recipe_keys.params_key(params)))
        last = rows[-1][0]


def downgrade() -> None:
    op.drop_index('ix_point_aggregates_task_id_recipe_label', table_name='point_aggregates')
    op.drop_table('point_aggregates')
    with op.batch_alter_table('allocations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_allocations_request_key'))
        batch_op.drop_column('request_key')
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_column('results_version')
    with op.batch_alter_table('trials', schema=None) as batch_op:
        batch_op.drop_index('ix_trials_unaggregated')
        batch_op.drop_index('ix_trials_task_id_recipe_label')
        batch_op.drop_column('aggregated')
        batch_op.drop_column('params_key')
        batch_op.drop_column('recipe_label')
