"""phone-only families: important notices, and how each change reached the families

Revision ID: 0012_family_reach
Revises: 0012_proxyonce
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0012_family_reach"
down_revision: str | None = "0012_proxyonce"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notices") as batch:
        batch.add_column(sa.Column("important", sa.Boolean(), server_default=sa.false(),
                                   nullable=False))
    op.create_table(
        "change_reach",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("event_change_id", sa.Integer(), nullable=True),
        sa.Column("notice_id", sa.Integer(), nullable=True),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("emailed", sa.Integer(), nullable=False),
        sa.Column("called", sa.Integer(), nullable=False),
        sa.Column("unreachable", sa.Integer(), nullable=False),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("(event_change_id IS NULL) <> (notice_id IS NULL)",
                           name=op.f("ck_change_reach_one_subject")),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"],
                                name=op.f("fk_change_reach_campaign_id_campaigns")),
        sa.ForeignKeyConstraint(["event_change_id"], ["event_changes.id"],
                                name=op.f("fk_change_reach_event_change_id_event_changes")),
        sa.ForeignKeyConstraint(["notice_id"], ["notices.id"],
                                name=op.f("fk_change_reach_notice_id_notices")),
        sa.ForeignKeyConstraint(["school_id"], ["schools.id"],
                                name=op.f("fk_change_reach_school_id_schools")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_reach")),
        sa.UniqueConstraint("event_change_id", name=op.f("uq_change_reach_event_change_id")),
        sa.UniqueConstraint("notice_id", name=op.f("uq_change_reach_notice_id")),
    )
    with op.batch_alter_table("change_reach") as batch:
        batch.create_index(batch.f("ix_change_reach_school_id"), ["school_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("change_reach") as batch:
        batch.drop_index(batch.f("ix_change_reach_school_id"))
    op.drop_table("change_reach")
    with op.batch_alter_table("notices") as batch:
        batch.drop_column("important")
