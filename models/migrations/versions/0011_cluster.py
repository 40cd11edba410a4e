"""call attempts carry the node whose dialer placed them and when their channel was gone

Revision ID: 0011_cluster
Revises: 0010_peak
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0011_cluster"
down_revision: str | None = "0010_peak"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("call_attempts") as batch:
        batch.add_column(sa.Column("node", sa.String(length=64), server_default="",
                                   nullable=False))
        batch.add_column(sa.Column("released_at", models.base.UTCDateTime(), nullable=True))
    # Calls of before this revision are long over.
    op.execute("UPDATE call_attempts SET released_at = COALESCE(ended_at, started_at)")


def downgrade() -> None:
    with op.batch_alter_table("call_attempts") as batch:
        batch.drop_column("released_at")
        batch.drop_column("node")
