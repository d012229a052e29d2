"""tasks.name holds up to 200 characters: a team's upload is stored as "<team>.<name>"
(tasks.names), up to 64 + 1 + 100 of them. Rows stored before keep their plain names.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 22:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.alter_column('name', existing_type=sa.String(length=100), type_=sa.String(length=200),
                              existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.alter_column('name', existing_type=sa.String(length=200), type_=sa.String(length=100),
                              existing_nullable=False)
