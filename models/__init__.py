"""Renraku's data model (SQLAlchemy 2 typed ORM) and database access."""

from models.absence import AbsenceReport, AbsenceReportChange, CallLog
from models.base import Base
from models.broadcast import (
    BroadcastRead,
    CallAttempt,
    Campaign,
    CampaignHousehold,
    EmailDelivery,
    Survey,
    SurveyOption,
    SurveyQuestion,
    SurveyResponse,
)
from models.calendar import ChangeReach, Event, EventChange, FamilyEvent, Notice
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
from models.proxy_request import ProxyRequest
from models.receipt import NoticeRead
from models.school import CalendarChange, Classroom, School, Staff, StaffClass, Term
from models.security import AuditEntry, ThrottleEvent
from models.staffroom import (
    ChildNote,
    ChildNoteVersion,
    FollowUp,
    RollCall,
    StaffAlert,
    StaffAttachment,
    StaffBoardPref,
    StaffEvent,
    StaffMessage,
    StaffMessageRecipient,
    StaffroomSettings,
)
from models.voicemail import Voicemail, VoicemailChild

__all__ = [
    "MAX_GUARDIANS_PER_CHILD",
    "AbsenceReport",
    "AbsenceReportChange",
    "AuditEntry",
    "Base",
    "BroadcastRead",
    "CalendarChange",
    "CallAttempt",
    "CallLog",
    "Campaign",
    "CampaignHousehold",
    "ChangeReach",
    "Child",
    "ChildNote",
    "ChildNoteVersion",
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
    "NoticeRead",
    "Prompt",
    "ProxyRequest",
    "RegistrationToken",
    "RollCall",
    "School",
    "SmsMessage",
    "Staff",
    "StaffAlert",
    "StaffAttachment",
    "StaffBoardPref",
    "StaffClass",
    "StaffEvent",
    "StaffMessage",
    "StaffMessageRecipient",
    "StaffroomSettings",
    "Survey",
    "SurveyOption",
    "SurveyQuestion",
    "SurveyResponse",
    "Term",
    "ThrottleEvent",
    "VerificationCode",
    "Voicemail",
    "VoicemailChild",
]
