"""Proxy registration (代理登録): the school registers a family without smartphone or email.

From the paper request form (代理登録依頼書) a teacher enters the guardian's name and
reading, relation to the child, phone (a home landline is fine), language and the child.
The number is marked verified — the school checked it on paper or by calling back — so
the guardian can use the phone line at once. Where the family did give an email address,
a completion email confirms the registration; otherwise the dialer calls the new number
once, inside the calling window, and says it in the family's language
(:func:`queue_completion_call`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Campaign, Child, Guardian, GuardianPhone
from renraku.i18n import tr
from renraku.rules.phone import PhoneNumber, normalise
from renraku.services import broadcast, mail
from renraku.services.guardians import link_guardian
from renraku.settings import LANGUAGES, Settings


class ProxyError(ValueError):
    """A field is wrong; ``field`` names it for the form."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


@dataclass(frozen=True)
class ProxyForm:
    child_id: int
    name: str
    reading: str
    relation: str
    phone: str
    language: str = "ja"
    email: str = ""


@dataclass(frozen=True)
class ProxyResult:
    guardian: Guardian
    number: PhoneNumber
    reused: bool  # an existing guardian on this number was linked instead of a new one


async def proxy_register(
    session: AsyncSession, form: ProxyForm, *, region: str = "JP"
) -> ProxyResult:
    """Create (or reuse) the guardian, verify the phone, link the child (≤ 3 guardians).

    A guardian already registered with the same name on the same number (a grandparent
    who looks after two siblings) is linked rather than duplicated. Raises ProxyError or
    renraku.services.guardians.GuardianLimitReached.
    """
    name, reading = form.name.strip(), form.reading.strip()
    if not name:
        raise ProxyError("name")
    if form.language not in LANGUAGES:
        raise ProxyError("language")
    try:
        number = normalise(form.phone, region)
    except ValueError as exc:
        raise ProxyError("phone") from exc
    email = form.email.strip().lower() or None
    if email is not None and ("@" not in email or " " in email):
        raise ProxyError("email")
    child = await session.get(Child, form.child_id)
    if child is None:
        raise ProxyError("child")
    guardian = await session.scalar(
        select(Guardian)
        .join(GuardianPhone)
        .where(GuardianPhone.e164 == number.e164, Guardian.name == name)
        .order_by(Guardian.id)
    )
    reused = guardian is not None
    if guardian is None:
        if email is not None and await session.scalar(
            select(func.count()).select_from(Guardian).where(Guardian.email == email)
        ):
            raise ProxyError("email_taken")
        guardian = Guardian(
            name=name, reading=reading, language=form.language, email=email,
            proxy_registered=True,
        )
        session.add(guardian)
        await session.flush()
        session.add(GuardianPhone(guardian_id=guardian.id, e164=number.e164, kind=number.kind,
                                  verified=True))
        await session.flush()
    await link_guardian(session, child.id, guardian.id, form.relation.strip())
    return ProxyResult(guardian, number, reused)


def completion_email(
    guardian: Guardian, child_name: str, school_name: str, phone: PhoneNumber, sender: str,
    now: datetime,
) -> EmailMessage | None:
    if not guardian.email:
        return None
    lang = guardian.language if guardian.language in LANGUAGES else "ja"
    values = {"name": guardian.name, "child": child_name, "school": school_name,
              "phone": phone.national}
    return mail.build(
        sender, guardian.email, tr(lang, "[%(school)s] Your registration is complete", **values),
        tr(lang, "Dear %(name)s,\n\nThe school has registered you as a guardian of %(child)s.\n"
           "To report an absence, late arrival or early leave, call the school's contact line "
           "from your registered number (%(phone)s), any time of day.\n\n%(school)s",
           **values),
        now=now)


async def queue_completion_call(
    session: AsyncSession, settings: Settings, *, school_id: int, child_id: int,
    number: PhoneNumber, title: str, message: dict[str, str], now: datetime,
    staff_id: int | None = None,
) -> Campaign:
    """A voice message to the newly registered number only, for families without email.

    ``message`` per language (the dialer speaks the family's, else Japanese). A campaign
    like any broadcast: retried when busy, kept inside the calling window, on the console.
    """
    campaign = await broadcast.create_campaign(
        session, settings, school_id=school_id, title=title, target={"children": [child_id]},
        now=now, message=message, voice=True, email=False, created_by=staff_id)
    return await broadcast.launch(session, settings, campaign, now, only_phones={number.e164})
