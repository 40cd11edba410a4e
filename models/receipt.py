"""Read receipts: a family (one child's guardians) has opened a notice on the web."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class NoticeRead(Base):
    """The first time a guardian of the child saw the notice; later views change nothing."""

    __tablename__ = "notice_reads"
    __table_args__ = (UniqueConstraint("notice_id", "child_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id"))
    child_id: Mapped[int] = mapped_column(ForeignKey("children.id"))
    guardian_id: Mapped[int] = mapped_column(ForeignKey("guardians.id"))
    read_at: Mapped[datetime]
