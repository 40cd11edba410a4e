"""one pending proxy registration request per class, child name and number

Revision ID: 0012_proxyonce
Revises: 0012_broadcast_reads
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_proxyonce"
down_revision: str | None = "0012_broadcast_reads"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    # Twins sent before the index (a double click that beat the check) would stop it being
    # built: the later ones leave the queue, marked as the repeats they are.
    op.execute(
        "UPDATE proxy_requests SET status = 'rejected', "
        "reject_reason = '同じ依頼の重複 (duplicate of an earlier request)' "
        "WHERE status = 'pending' AND EXISTS (SELECT 1 FROM proxy_requests AS older "
        "WHERE older.status = 'pending' AND older.class_id = proxy_requests.class_id "
        "AND older.child_name = proxy_requests.child_name "
        "AND older.phone_e164 = proxy_requests.phone_e164 AND older.id < proxy_requests.id)")
    op.create_index("uq_proxy_requests_pending", "proxy_requests",
                    ["class_id", "child_name", "phone_e164"], unique=True,
                    sqlite_where=PENDING, postgresql_where=PENDING)


def downgrade() -> None:
    op.drop_index("uq_proxy_requests_pending", table_name="proxy_requests")
