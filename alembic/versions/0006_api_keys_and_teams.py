"""API keys, and the team that owns each uploaded task, allocation and grid study

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 15:00:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'api_keys',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('team', sa.String(length=64), nullable=False),
        sa.Column('label', sa.String(length=100), nullable=False),
        sa.Column('shown', sa.String(length=16), nullable=False),
        sa.Column('key_digest', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
        sa.UniqueConstraint('key_digest', name=op.f('uq_api_keys_key_digest')),
    )
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_keys_team'), ['team'], unique=False)
        batch_op.create_index(batch_op.f('ix_api_keys_shown'), ['shown'], unique=False)
    # Uploads made before teams existed belong to the keyless team "local"; built-in tasks to none.
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('team', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_tasks_team'), ['team'], unique=False)
    op.execute("UPDATE tasks SET team = 'local' WHERE source = 'upload'")
    for table in ('allocations', 'grid_studies'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('team', sa.String(length=64), server_default='local', nullable=False))
            batch_op.create_index(batch_op.f(f'ix_{table}_team'), ['team'], unique=False)


def downgrade() -> None:
    for table in ('grid_studies', 'allocations', 'tasks'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f'ix_{table}_team'))
            batch_op.drop_column('team')
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_keys_shown'))
        batch_op.drop_index(batch_op.f('ix_api_keys_team'))
    op.drop_table('api_keys')
