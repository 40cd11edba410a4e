"""school setup: absence line number and calling window per school; staff set-password links

Revision ID: 0003_school_setup
Revises: 0002_staff_roles
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_school_setup"
down_revision: str | None = "0002_staff_roles"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("schools") as batch:
        batch.add_column(sa.Column("absence_line_e164", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("call_window_start", sa.String(length=5), nullable=True))
        batch.add_column(sa.Column("call_window_end", sa.String(length=5), nullable=True))
    # A one-time code now belongs to a guardian or (set-password link) to a staff member.
    with op.batch_alter_table("verification_codes") as batch:
        batch.alter_column("guardian_id", existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column("staff_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_verification_codes_staff_id_staff"), "staff",
                                 ["staff_id"], ["id"])
        batch.create_index(op.f("ix_verification_codes_staff_id"), ["staff_id"], unique=False)
        batch.create_check_constraint("one_owner", "(guardian_id IS NULL) <> (staff_id IS NULL)")


def downgrade() -> None:
    op.execute("DELETE FROM verification_codes WHERE staff_id IS NOT NULL")
    with op.batch_alter_table("verification_codes") as batch:
        batch.drop_constraint(op.f("ck_verification_codes_one_owner"), type_="check")
        batch.drop_index(op.f("ix_verification_codes_staff_id"))
        batch.drop_constraint(op.f("fk_verification_codes_staff_id_staff"), type_="foreignkey")
        batch.drop_column("staff_id")
        batch.alter_column("guardian_id", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("schools") as batch:
        batch.drop_column("call_window_end")
        batch.drop_column("call_window_start")
        batch.drop_column("absence_line_e164")
