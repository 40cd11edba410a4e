"""calendar: date-range changes per school, grade or class replace single calendar days

Closures (school, grade 学年閉鎖, class 学級閉鎖) and extra school days now span date
ranges; national holidays are no longer stored (they come from the holidays library).
Existing calendar days are kept as one-day school-wide changes.

Revision ID: 0004_calendar
Revises: 0003_school_setup
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0004_calendar"
down_revision: str | None = "0003_school_setup"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "calendar_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("is_school_day", sa.Boolean(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("class_id", sa.Integer(), nullable=True),
        sa.Column("grade", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True),
                  server_default=sa.text("(CURRENT_TIMESTAMP)"), nullable=False),
        sa.CheckConstraint("start_date <= end_date", name=op.f("ck_calendar_changes_ordered")),
        sa.CheckConstraint("class_id IS NULL OR grade IS NULL",
                           name=op.f("ck_calendar_changes_one_scope")),
        sa.CheckConstraint("NOT is_school_day OR (class_id IS NULL AND grade IS NULL)",
                           name=op.f("ck_calendar_changes_open_school_wide")),
        sa.ForeignKeyConstraint(["class_id"], ["classes.id"],
                                name=op.f("fk_calendar_changes_class_id_classes")),
        sa.ForeignKeyConstraint(["created_by"], ["staff.id"],
                                name=op.f("fk_calendar_changes_created_by_staff")),
        sa.ForeignKeyConstraint(["school_id"], ["schools.id"],
                                name=op.f("fk_calendar_changes_school_id_schools")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_changes")),
    )
    with op.batch_alter_table("calendar_changes") as batch:
        batch.create_index(batch.f("ix_calendar_changes_school_id"), ["school_id"], unique=False)
    op.execute(
        "INSERT INTO calendar_changes (school_id, start_date, end_date, is_school_day, name)"
        " SELECT school_id, day, day, is_school_day, name FROM calendar_days"
    )
    op.drop_table("calendar_days")


def downgrade() -> None:
    op.create_table(
        "calendar_days",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("is_school_day", sa.Boolean(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(["school_id"], ["schools.id"],
                                name=op.f("fk_calendar_days_school_id_schools")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_days")),
        sa.UniqueConstraint("school_id", "day", name=op.f("uq_calendar_days_school_id_day")),
    )
    # Only one-day school-wide changes fit the old table; ranges and class closures are lost.
    op.execute(
        "INSERT INTO calendar_days (school_id, day, is_school_day, name)"
        " SELECT school_id, start_date, is_school_day, name FROM calendar_changes"
        " WHERE start_date = end_date AND class_id IS NULL AND grade IS NULL"
    )
    with op.batch_alter_table("calendar_changes") as batch:
        batch.drop_index(batch.f("ix_calendar_changes_school_id"))
    op.drop_table("calendar_changes")
