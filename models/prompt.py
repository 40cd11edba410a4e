"""Versions of every phrase the phone says, per language: TTS renders and recordings."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, deferred, mapped_column

from models.base import Base
from models.enums import PromptSource, check_in


class Prompt(Base):
    """One version of one prompt in one language; exactly one version is active."""

    __tablename__ = "prompts"
    __table_args__ = (
        CheckConstraint(check_in("source", PromptSource), name="source"),
        Index("uq_prompts_version", "key", "language", "version", unique=True),
        Index(
            "uq_prompts_active",
            "key",
            "language",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100))
    language: Mapped[str] = mapped_column(String(8))
    version: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(12))
    text: Mapped[str] = mapped_column(Text, default="")
    text_hash: Mapped[str] = mapped_column(String(64), default="")
    engine: Mapped[str] = mapped_column(String(32), default="")
    audio_path: Mapped[str] = mapped_column(String(300))
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    # The WAV itself (8 kHz mono, some 16 kB a second): app nodes share no disk, so the one
    # that serves a version to an IVR node may not be the one that made it. Loaded only
    # when asked for (prompts.media).
    audio: Mapped[bytes | None] = deferred(mapped_column(LargeBinary, nullable=True))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime]
