"""families: proxy registration requests from the public web form; notice read receipts

Revision ID: 0006_families
Revises: 0008_security
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0006_families"
down_revision: str | None = "0008_security"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "proxy_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("class_id", sa.Integer(), nullable=False),
        sa.Column("child_name", sa.String(length=100), nullable=False),
        sa.Column("guardian_name", sa.String(length=100), nullable=False),
        sa.Column("relation", sa.String(length=32), nullable=False),
        sa.Column("phone_e164", sa.String(length=20), nullable=False),
        sa.Column("phone_kind", sa.String(length=16), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("reject_reason", sa.Text(), nullable=False),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("handled_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("handled_by", sa.Integer(), nullable=True),
        sa.Column("guardian_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'registered', 'rejected')",
                           name=op.f("ck_proxy_requests_status")),
        sa.CheckConstraint("phone_kind IN ('mobile', 'landline', 'other')",
                           name=op.f("ck_proxy_requests_phone_kind")),
        sa.CheckConstraint("language IN ('ja', 'en', 'zh', 'es')",
                           name=op.f("ck_proxy_requests_language")),
        sa.ForeignKeyConstraint(["class_id"], ["classes.id"],
                                name=op.f("fk_proxy_requests_class_id_classes")),
        sa.ForeignKeyConstraint(["guardian_id"], ["guardians.id"],
                                name=op.f("fk_proxy_requests_guardian_id_guardians")),
        sa.ForeignKeyConstraint(["handled_by"], ["staff.id"],
                                name=op.f("fk_proxy_requests_handled_by_staff")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proxy_requests")),
    )
    op.create_index("ix_proxy_requests_queue", "proxy_requests", ["class_id", "status"])
    op.create_table(
        "notice_reads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notice_id", sa.Integer(), nullable=False),
        sa.Column("child_id", sa.Integer(), nullable=False),
        sa.Column("guardian_id", sa.Integer(), nullable=False),
        sa.Column("read_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["child_id"], ["children.id"],
                                name=op.f("fk_notice_reads_child_id_children")),
        sa.ForeignKeyConstraint(["guardian_id"], ["guardians.id"],
                                name=op.f("fk_notice_reads_guardian_id_guardians")),
        sa.ForeignKeyConstraint(["notice_id"], ["notices.id"],
                                name=op.f("fk_notice_reads_notice_id_notices")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice_reads")),
        sa.UniqueConstraint("notice_id", "child_id", name=op.f("uq_notice_reads_notice_id_child_id")),
    )


def downgrade() -> None:
    op.drop_table("notice_reads")
    op.drop_index("ix_proxy_requests_queue", table_name="proxy_requests")
    op.drop_table("proxy_requests")
