"""roster: student numbers, name parts, birth dates, leaving (転出・卒業), 出席番号

Revision ID: 0005_roster
Revises: 0004_calendar
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_roster"
down_revision: str | None = "0004_calendar"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("children") as batch:
        batch.add_column(sa.Column("student_number", sa.String(length=32), nullable=True))
        # Existing children keep their full name in ``name``; the parts start empty.
        batch.add_column(sa.Column("family_name", sa.String(length=100), nullable=False,
                                   server_default=""))
        batch.add_column(sa.Column("given_name", sa.String(length=100), nullable=False,
                                   server_default=""))
        batch.add_column(sa.Column("birth_date", sa.Date(), nullable=True))
        batch.add_column(sa.Column("left_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("left_reason", sa.String(length=16), nullable=True))
        batch.create_unique_constraint(
            op.f("uq_children_school_id_student_number"), ["school_id", "student_number"])
        batch.create_check_constraint(
            "left_reason", "left_reason IN ('transfer', 'graduated')")
    with op.batch_alter_table("enrolments") as batch:
        batch.add_column(sa.Column("number", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("enrolments") as batch:
        batch.drop_column("number")
    with op.batch_alter_table("children") as batch:
        batch.drop_constraint(op.f("ck_children_left_reason"), type_="check")
        batch.drop_constraint(op.f("uq_children_school_id_student_number"), type_="unique")
        for column in ("left_reason", "left_on", "birth_date", "given_name", "family_name",
                       "student_number"):
            batch.drop_column(column)
