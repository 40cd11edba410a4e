"""What every signed-in guardian page shares: the child from the URL, checked, and the nav."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from models import Child, Guardian, Guardianship
from renraku.app import App
from renraku.services import portal
from renraku.services.schools import school_now
from webportal import i18n
from webportal.security import app_of, signed_guardian
from webportal.templating import gettext_for, language_of, render

RELATIONS = ("mother", "father", "grandmother", "grandfather", "other")


@dataclass
class ChildPage:
    request: web.Request
    app: App
    guardian: Guardian
    child: Child
    link: Guardianship
    children: list[Child]

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.child.school.timezone)

    @property
    def now(self) -> datetime:
        return self.app.clock.now()

    @property
    def today(self) -> date:
        return school_now(self.app.clock, self.child.school).date()

    @property
    def is_primary(self) -> bool:
        return self.link.position == 1


def int_match(request: web.Request, name: str) -> int:
    try:
        return int(request.match_info[name])
    except (KeyError, ValueError) as exc:
        raise web.HTTPNotFound() from exc


async def child_page(request: web.Request, session: AsyncSession) -> ChildPage:
    """The child in the URL if the signed-in guardian is one of theirs; 404 otherwise.

    404 (not 403) so that guessing ids does not even confirm that a child exists.
    """
    guardian: Guardian = signed_guardian(request)
    child_id = int_match(request, "child_id")
    link = await portal.guardianship(session, guardian.id, child_id)
    if link is None or not link.child.active:
        raise web.HTTPNotFound()
    children = await portal.guardian_children(session, guardian.id)
    return ChildPage(request, app_of(request), guardian, link.child, link, children)


def symptom_labels(_: Callable[..., str]) -> dict[str, str]:
    """Symptoms of an illness or infectious disease (the nurse counts them)."""
    return {"fever": _("Fever"), "influenza": _("Influenza"), "covid19": _("COVID-19"),
            "gastroenteritis": _("Gastroenteritis"), "other": _("Other symptom")}


def labels(_: Callable[..., str]) -> dict[str, dict[str, str]]:
    """Names for stored codes (kinds, reasons, change actions, channels, relations)."""
    return {
        "kinds": {"absence": _("Absence"), "late": _("Late arrival"),
                  "early_leave": _("Early leave")},
        "reasons": {"illness": _("Illness"), "injury": _("Injury or hospital visit"),
                    "suspension": _("Infectious disease (attendance suspended)"),
                    "bereavement": _("Bereavement or family matters"), "other": _("Other")},
        "symptoms": symptom_labels(_),
        "actions": {"created": _("Reported"), "changed": _("Changed"),
                    "cancelled": _("Cancelled"), "reconfirmed": _("Reported again")},
        "channels": {"phone": _("Phone"), "web": _("Web"), "email": _("Email"),
                     "staff": _("Staff")},
        "relations": {"mother": _("Mother"), "father": _("Father"),
                      "grandmother": _("Grandmother"), "grandfather": _("Grandfather"),
                      "other": _("Other")},
    }


def render_child(cp: ChildPage, template: str, context: dict[str, Any], section: str,
                 status: int = 200) -> web.Response:
    _ = gettext_for(cp.request)
    lang = language_of(cp.request)
    return render(cp.request, template, {
        "cp": cp, "child": cp.child, "children": cp.children, "section": section,
        "guardian": cp.guardian, "date_of": date.fromisoformat,
        "format_datetime": lambda dt: i18n.format_datetime(dt, lang, cp.child.school.timezone),
        **labels(_), **context,
    }, status=status)
