"""voicemail reports recorded by Asterisk when the app could not take a call

Revision ID: 0009_voicemail
Revises: 0005_roster
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0009_voicemail"
down_revision: str | None = "0005_roster"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "voicemails",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.String(length=200), nullable=False),
        sa.Column("caller", sa.String(length=40), nullable=False),
        sa.Column("caller_e164", sa.String(length=20), nullable=True),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("uniqueid", sa.String(length=64), nullable=False),
        sa.Column("received_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=True),
        sa.Column("guardian_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=True),
        sa.Column("handled_by", sa.Integer(), nullable=True),
        sa.Column("handled_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("imported_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('new', 'confirmed', 'done')",
                           name=op.f("ck_voicemails_status")),
        sa.ForeignKeyConstraint(["guardian_id"], ["guardians.id"],
                                name=op.f("fk_voicemails_guardian_id_guardians")),
        sa.ForeignKeyConstraint(["handled_by"], ["staff.id"],
                                name=op.f("fk_voicemails_handled_by_staff")),
        sa.ForeignKeyConstraint(["report_id"], ["absence_reports.id"],
                                name=op.f("fk_voicemails_report_id_absence_reports")),
        sa.ForeignKeyConstraint(["school_id"], ["schools.id"],
                                name=op.f("fk_voicemails_school_id_schools")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_voicemails")),
        sa.UniqueConstraint("file_name", name=op.f("uq_voicemails_file_name")),
    )
    op.create_index(op.f("ix_voicemails_school_id"), "voicemails", ["school_id"], unique=False)
    op.create_table(
        "voicemail_children",
        sa.Column("voicemail_id", sa.Integer(), nullable=False),
        sa.Column("child_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["child_id"], ["children.id"],
                                name=op.f("fk_voicemail_children_child_id_children")),
        sa.ForeignKeyConstraint(["voicemail_id"], ["voicemails.id"],
                                name=op.f("fk_voicemail_children_voicemail_id_voicemails")),
        sa.PrimaryKeyConstraint("voicemail_id", "child_id", name=op.f("pk_voicemail_children")),
    )
    op.create_index(op.f("ix_voicemail_children_child_id"), "voicemail_children", ["child_id"],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_voicemail_children_child_id"), table_name="voicemail_children")
    op.drop_table("voicemail_children")
    op.drop_index(op.f("ix_voicemails_school_id"), table_name="voicemails")
    op.drop_table("voicemails")
