"""Renraku's data model (SQLAlchemy 2 typed ORM) and database access."""

from models.absence import AbsenceReport, AbsenceReportChange, CallLog
from models.base import Base
from models.broadcast import (
    CallAttempt,
    Campaign,
    CampaignHousehold,
    EmailDelivery,
    Survey,
    SurveyOption,
    SurveyQuestion,
    SurveyResponse,
)
from models.calendar import Event, EventChange, FamilyEvent, Notice
from models.people import (
    MAX_GUARDIANS_PER_CHILD,
    Child,
    Enrolment,
    Guardian,
    GuardianPhone,
    Guardianship,
    RegistrationToken,
    SmsMessage,
    VerificationCode,
)
from models.prompt import Prompt
from models.school import CalendarDay, Classroom, School, Staff, StaffClass, Term
from models.staffroom import FollowUp, RollCall, StaffAlert, StaffroomSettings

__all__ = [
    "MAX_GUARDIANS_PER_CHILD",
    "AbsenceReport",
    "AbsenceReportChange",
    "Base",
    "CalendarDay",
    "CallAttempt",
    "CallLog",
    "Campaign",
    "CampaignHousehold",
    "Child",
    "Classroom",
    "EmailDelivery",
    "Enrolment",
    "Event",
    "EventChange",
    "FamilyEvent",
    "FollowUp",
    "Guardian",
    "GuardianPhone",
    "Guardianship",
    "Notice",
    "Prompt",
    "RegistrationToken",
    "RollCall",
    "School",
    "SmsMessage",
    "Staff",
    "StaffAlert",
    "StaffClass",
    "StaffroomSettings",
    "Survey",
    "SurveyOption",
    "SurveyQuestion",
    "SurveyResponse",
    "Term",
    "VerificationCode",
]
