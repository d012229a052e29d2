"""Reads from aggregates: trials' recipe label and params digest, per-point aggregates, tasks'
results version, allocations' request key

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 17:30:00
"""

import hashlib
import json

import sqlalchemy as sa
from alembic import op
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


# The recipes' params when this migration was written (worker/engine/spec.py at d11ecc0), frozen here:
# a later change to a recipe must not change what this migration computes for the trials it fills.
RECIPES_THEN = {
    "fast": {"batch_size": 32, "eval_batch_size": 64, "eval_every": 16, "icl_max_shots": 64,
             "keep_stage_start": True, "logconf_aux_weight": 0.5, "logconf_warmup_frac": 0.1, "lr": 0.001,
             "max_examples_per_stage": 2048, "max_length": None, "max_steps_per_stage": None, "min_delta": 0.01,
             "min_val_labels": 50, "n_shots": 2, "n_test": None, "patience": 4, "uncertainty_candidates": None,
             "warmup_steps": 40},
    "paper": {"batch_size": 32, "eval_batch_size": 64, "eval_every": 50, "icl_max_shots": 64,
              "keep_stage_start": False, "logconf_aux_weight": 0.5, "logconf_warmup_frac": 0.1, "lr": 0.0005,
              "max_examples_per_stage": 30000, "max_length": None, "max_steps_per_stage": None, "min_delta": 0.01,
              "min_val_labels": 0, "n_shots": 2, "n_test": None, "patience": 4, "uncertainty_candidates": None,
              "warmup_steps": 40},
}


def recipe_label(recipe, params: dict) -> str:
    """app.trials.recipe_keys.label as it was then: the recipe's name, then the params that differ."""
    base = RECIPES_THEN.get(recipe or "paper")
    extra = params if base is None else {k: v for k, v in sorted(params.items()) if base.get(k) != v}
    words = " ".join(f"{k}={v}" for k, v in extra.items())
    return f"{recipe or 'paper'}{' ' + words if words else ''}"


def params_key(params: dict) -> str:
    """app.trials.recipe_keys.params_key as it was then."""
    return hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]


def _fill_recipe_keys() -> None:
    """Existing trials get the keys new ones were created with when this migration was written."""
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
                recipe_label=recipe_label(recipe, params), params_key=params_key(params)))
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
