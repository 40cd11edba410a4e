"""broadcast read receipts per family (email link, call heard, web); resends of a broadcast
and of a notice

Revision ID: 0012_broadcast_reads
Revises: 0007_staffroom
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0012_broadcast_reads"
down_revision: str | None = "0007_staffroom"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "broadcast_reads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("child_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("guardian_id", sa.Integer(), nullable=True),
        sa.Column("read_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("channel IN ('email', 'call', 'web')",
                           name=op.f("ck_broadcast_reads_channel")),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"],
                                name=op.f("fk_broadcast_reads_campaign_id_campaigns")),
        sa.ForeignKeyConstraint(["child_id"], ["children.id"],
                                name=op.f("fk_broadcast_reads_child_id_children")),
        sa.ForeignKeyConstraint(["guardian_id"], ["guardians.id"],
                                name=op.f("fk_broadcast_reads_guardian_id_guardians")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcast_reads")),
        sa.UniqueConstraint("campaign_id", "child_id",
                            name=op.f("uq_broadcast_reads_campaign_id_child_id")),
    )
    op.create_index(op.f("ix_broadcast_reads_child_id"), "broadcast_reads", ["child_id"])
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("resend_of", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("resend_key", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("notice_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(batch.f("fk_campaigns_resend_of_campaigns"), "campaigns",
                                 ["resend_of"], ["id"])
        batch.create_foreign_key(batch.f("fk_campaigns_notice_id_notices"), "notices",
                                 ["notice_id"], ["id"])
        batch.create_unique_constraint(batch.f("uq_campaigns_resend_key"), ["resend_key"])


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_constraint(batch.f("uq_campaigns_resend_key"), type_="unique")
        batch.drop_constraint(batch.f("fk_campaigns_notice_id_notices"), type_="foreignkey")
        batch.drop_constraint(batch.f("fk_campaigns_resend_of_campaigns"), type_="foreignkey")
        batch.drop_column("notice_id")
        batch.drop_column("resend_key")
        batch.drop_column("resend_of")
    op.drop_index(op.f("ix_broadcast_reads_child_id"), table_name="broadcast_reads")
    op.drop_table("broadcast_reads")
