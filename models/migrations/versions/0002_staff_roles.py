"""staff roles: nurse and principal

Revision ID: 0002_staff_roles
Revises: b465921ec75f
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002_staff_roles"
down_revision: str | None = "b465921ec75f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = "role IN ('teacher', 'admin')"
NEW = "role IN ('teacher', 'admin', 'nurse', 'principal')"


def _replace(check: str) -> None:
    with op.batch_alter_table("staff") as batch:
        batch.drop_constraint(op.f("ck_staff_role"), type_="check")
        batch.create_check_constraint("role", check)


def upgrade() -> None:
    _replace(NEW)


def downgrade() -> None:
    _replace(OLD)
