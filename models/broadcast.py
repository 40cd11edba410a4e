"""Surveys, campaigns (voice broadcast and email) and their delivery attempts.

Campaign and attempt state live here, not in the dialer's memory, so a restarted dialer
resumes exactly where the database says it stopped.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base
from models.enums import AttemptStatus, CampaignStatus, check_in


class Survey(Base):
    __tablename__ = "surveys"

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime]
    closes_at: Mapped[datetime | None]

    questions: Mapped[list[SurveyQuestion]] = relationship(
        back_populates="survey", order_by="SurveyQuestion.position"
    )


class SurveyQuestion(Base):
    __tablename__ = "survey_questions"
    __table_args__ = (
        UniqueConstraint("survey_id", "position"),
        CheckConstraint("position BETWEEN 1 AND 5", name="position"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id"))
    position: Mapped[int] = mapped_column(Integer)
    # {"ja": "...", "en": "..."}: Japanese always, other languages where given
    text: Mapped[dict] = mapped_column(JSON)

    survey: Mapped[Survey] = relationship(back_populates="questions")
    options: Mapped[list[SurveyOption]] = relationship(
        back_populates="question", order_by="SurveyOption.digit"
    )


class SurveyOption(Base):
    __tablename__ = "survey_options"
    __table_args__ = (
        UniqueConstraint("question_id", "digit"),
        CheckConstraint("digit BETWEEN 1 AND 9", name="digit"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("survey_questions.id"))
    digit: Mapped[int] = mapped_column(Integer)
    label: Mapped[dict] = mapped_column(JSON)

    question: Mapped[SurveyQuestion] = relationship(back_populates="options")


class SurveyResponse(Base):
    """One answer per question and child, given by the child's primary guardian."""

    __tablename__ = "survey_responses"
    __table_args__ = (UniqueConstraint("question_id", "child_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("survey_questions.id"))
    child_id: Mapped[int] = mapped_column(ForeignKey("children.id"), index=True)
    option_id: Mapped[int] = mapped_column(ForeignKey("survey_options.id"))
    guardian_id: Mapped[int | None] = mapped_column(ForeignKey("guardians.id"))
    channel: Mapped[str] = mapped_column(String(8))  # phone, web, email
    answered_at: Mapped[datetime]


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (CheckConstraint(check_in("status", CampaignStatus), name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    # The FastAGI call flow answered calls run: broadcast, or followup (renraku.services.followup)
    flow: Mapped[str] = mapped_column(String(16), default="broadcast", server_default="broadcast")
    # {"ja": "...", "en": "..."}: families hear their language where given, else Japanese
    message: Mapped[dict] = mapped_column(JSON, default=dict)
    recorded_prompt_key: Mapped[str | None] = mapped_column(String(100))
    voice: Mapped[bool] = mapped_column(default=True)
    email: Mapped[bool] = mapped_column(default=False)
    # {"school": true} | {"grades": [1, 2]} | {"classes": [ids]} | {"children": [ids]}
    target: Mapped[dict] = mapped_column(JSON)
    survey_id: Mapped[int | None] = mapped_column(ForeignKey("surveys.id"))
    scheduled_at: Mapped[datetime | None]
    window_start: Mapped[str] = mapped_column(String(5), default="08:00")
    window_end: Mapped[str] = mapped_column(String(5), default="20:00")
    status: Mapped[str] = mapped_column(String(12), default=CampaignStatus.DRAFT)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # A resend to the families who have not read ``resend_of`` (its read receipts count for
    # that one). ``resend_key`` is the resend button's form value: a double click posts it
    # twice, and the unique constraint lets only one resend through.
    resend_of: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    resend_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    # A notice sent again by broadcast (renraku.services.receipts): its link followed or
    # its message heard marks the notice read for that family too
    notice_id: Mapped[int | None] = mapped_column(ForeignKey("notices.id"))

    survey: Mapped[Survey | None] = relationship()
    households: Mapped[list[CampaignHousehold]] = relationship(back_populates="campaign")


class CampaignHousehold(Base):
    """One phone number to call in a campaign (a shared landline is one household)."""

    __tablename__ = "campaign_households"
    __table_args__ = (
        UniqueConstraint("campaign_id", "phone_e164"),
        CheckConstraint(check_in("status", AttemptStatus), name="status"),
        Index("ix_campaign_households_due", "campaign_id", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    phone_e164: Mapped[str] = mapped_column(String(20))
    language: Mapped[str] = mapped_column(String(8), default="ja")
    guardian_id: Mapped[int | None] = mapped_column(ForeignKey("guardians.id"))
    child_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    # Whether this number belongs to a primary guardian: only they get the survey
    survey: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(16), default=AttemptStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    campaign: Mapped[Campaign] = relationship(back_populates="households")
    calls: Mapped[list[CallAttempt]] = relationship(
        back_populates="household", order_by="CallAttempt.id"
    )


class CallAttempt(Base):
    __tablename__ = "call_attempts"
    __table_args__ = (CheckConstraint(check_in("status", AttemptStatus), name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("campaign_households.id"), index=True)
    attempt_no: Mapped[int] = mapped_column(Integer)
    action_id: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=AttemptStatus.DIALING)
    # The app node whose dialer placed it: each dialer reconciles only its own calls
    node: Mapped[str] = mapped_column(String(64), default="", server_default="")
    hangup_cause: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(64), default="")
    message_completed: Mapped[bool] = mapped_column(default=False)
    amd_status: Mapped[str] = mapped_column(String(16), default="")
    started_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    # When its channel was gone (the Hangup seen, or reconciled). Until then it holds one of
    # the trunk's channels, also after the call flow wrote its outcome: the cap of every
    # node's dialers together counts these.
    released_at: Mapped[datetime | None]

    household: Mapped[CampaignHousehold] = relationship(back_populates="calls")


class EmailDelivery(Base):
    """A campaign email to one guardian, with its own expiring survey link token."""

    __tablename__ = "email_deliveries"
    __table_args__ = (UniqueConstraint("campaign_id", "guardian_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    guardian_id: Mapped[int] = mapped_column(ForeignKey("guardians.id"))
    address: Mapped[str] = mapped_column(String(254))
    token: Mapped[str] = mapped_column(String(64), unique=True)
    token_expires_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(12), default="queued")  # queued, sent, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    next_attempt_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]


class BroadcastRead(Base):
    """A family (one child) has got a broadcast: the first channel wins, later ones change
    nothing. ``email``: the email's tracked link followed; ``call``: a person heard the
    whole message on the phone (an answering machine does not count); ``web``: opened on
    the guardian portal."""

    __tablename__ = "broadcast_reads"
    __table_args__ = (
        UniqueConstraint("campaign_id", "child_id"),
        CheckConstraint("channel IN ('email', 'call', 'web')", name="channel"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    child_id: Mapped[int] = mapped_column(ForeignKey("children.id"), index=True)
    channel: Mapped[str] = mapped_column(String(8))
    # Who followed the link or opened the page; the called household's guardian for a call
    guardian_id: Mapped[int | None] = mapped_column(ForeignKey("guardians.id"))
    read_at: Mapped[datetime]
