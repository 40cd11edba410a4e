"""schools.rules_version: a token that changes with a school's rules (cached calendars)

Revision ID: 0010_peak
Revises: 0009_voicemail
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_peak"
down_revision: str | None = "0009_voicemail"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("schools") as batch:
        batch.add_column(sa.Column("rules_version", sa.String(32), nullable=False,
                                   server_default=""))
    # Any value lets the existing schools' calendars be cached; edits change it from here.
    op.execute("UPDATE schools SET rules_version = 'migrated'")


def downgrade() -> None:
    with op.batch_alter_table("schools") as batch:
        batch.drop_column("rules_version")
