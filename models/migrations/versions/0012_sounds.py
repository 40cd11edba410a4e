"""prompt versions keep their audio, so every app node can serve every version to the IVR nodes

Revision ID: 0012_sounds
Revises: 0012_family_reach
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_sounds"
down_revision: str | None = "0012_family_reach"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Versions made before this revision keep only their file on the node that made them.
    with op.batch_alter_table("prompts") as batch:
        batch.add_column(sa.Column("audio", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("prompts") as batch:
        batch.drop_column("audio")
