"""security: failed sign-ins shared by every worker, session epochs, the staff audit log

Revision ID: 0008_security
Revises: 0011_cluster
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0008_security"
down_revision: str | None = "0011_cluster"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "throttle_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_throttle_events")),
    )
    op.create_index("ix_throttle_events_kind_key_at", "throttle_events",
                    ["kind", "key", "at"], unique=False)
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("class_id", sa.Integer(), nullable=True),
        sa.Column("child_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.String(length=200), nullable=False),
        sa.Column("at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["child_id"], ["children.id"],
                                name=op.f("fk_audit_log_child_id_children")),
        sa.ForeignKeyConstraint(["class_id"], ["classes.id"],
                                name=op.f("fk_audit_log_class_id_classes")),
        sa.ForeignKeyConstraint(["school_id"], ["schools.id"],
                                name=op.f("fk_audit_log_school_id_schools")),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"],
                                name=op.f("fk_audit_log_staff_id_staff")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_school_id_at", "audit_log", ["school_id", "at"], unique=False)
    op.create_index(op.f("ix_audit_log_staff_id"), "audit_log", ["staff_id"], unique=False)
    for table in ("guardians", "staff"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("session_epoch", sa.Integer(), server_default="0",
                                       nullable=False))


def downgrade() -> None:
    for table in ("staff", "guardians"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("session_epoch")
    op.drop_index(op.f("ix_audit_log_staff_id"), table_name="audit_log")
    op.drop_index("ix_audit_log_school_id_at", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index("ix_throttle_events_kind_key_at", table_name="throttle_events")
    op.drop_table("throttle_events")
