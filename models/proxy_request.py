"""A family's request for proxy registration (代理登録依頼), sent from the public web form.

It waits in the class teacher's queue until registered (``guardian_id`` then names the
guardian made from it) or rejected with a reason. Nothing here is ever shown back on the
public side: the form only writes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base
from models.enums import PhoneKind, ProxyRequestStatus, check_in


class ProxyRequest(Base):
    __tablename__ = "proxy_requests"
    __table_args__ = (
        CheckConstraint(check_in("status", ProxyRequestStatus), name="status"),
        CheckConstraint(check_in("phone_kind", PhoneKind), name="phone_kind"),
        CheckConstraint("language IN ('ja', 'en', 'zh', 'es')", name="language"),
        Index("ix_proxy_requests_queue", "class_id", "status"),
        # One waiting request per child, class and number: a double click sends two at
        # the same instant, and on PostgreSQL both would pass the service's check.
        Index("uq_proxy_requests_pending", "class_id", "child_name", "phone_e164", unique=True,
              sqlite_where=text("status = 'pending'"),
              postgresql_where=text("status = 'pending'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id"))
    child_name: Mapped[str] = mapped_column(String(100))
    guardian_name: Mapped[str] = mapped_column(String(100))
    relation: Mapped[str] = mapped_column(String(32))
    phone_e164: Mapped[str] = mapped_column(String(20))
    phone_kind: Mapped[str] = mapped_column(String(16))
    email: Mapped[str | None] = mapped_column(String(254))
    language: Mapped[str] = mapped_column(String(8))
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(12), default=ProxyRequestStatus.PENDING)
    reject_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    handled_at: Mapped[datetime | None]
    handled_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    guardian_id: Mapped[int | None] = mapped_column(ForeignKey("guardians.id"))
