"""Voicemail reports: import what Asterisk recorded alone, list them, confirm them as absences.

When no app could take an absence call, the dialplan (``renraku-voicemail``) recorded the
caller into ``settings.voicemail_dir`` as ``vm-<epoch>-<uniqueid>-<lang|xx>-<digits>.wav``
and wrote ``<same>.done`` once the call ended. ``import_spool`` turns each finished file
into one ``Voicemail`` row (the file name is unique: importing again, or two importers at
once, adds nothing), linked to the children of the guardians registered with that number.
The file stays where Asterisk wrote it; the portal plays it from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import wave
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from models import (
    AbsenceReport,
    Child,
    Enrolment,
    School,
    Staff,
    Voicemail,
    VoicemailChild,
)
from models.db import transaction
from models.enums import Channel, ReportKind, ReportReason, VoicemailStatus
from renraku.app import App
from renraku.rules.permissions import StaffScope
from renraku.rules.phone import try_normalise
from renraku.rules.schoolday import report_day
from renraku.services import absences
from renraku.services.guardians import children_of, guardians_by_phone
from renraku.services.schools import school_calendar
from renraku.settings import LANGUAGES

log = logging.getLogger(__name__)

NAME_RE = re.compile(
    r"^vm-(?P<epoch>\d{9,11})-(?P<uniqueid>[0-9.]{1,64})-(?P<lang>ja|en|zh|es|xx)"
    r"-(?P<caller>[0-9+]{0,32})\.wav$"
)
# A recording with no .done file (Asterisk stopped mid-call) counts as finished once it
# has not grown for this long: Record() writes every 20 ms and stops after 120 s.
STALE_S = 180.0
IMPORT_EVERY_S = 30.0
INBOX_LIMIT = 200


@dataclass(frozen=True)
class SpoolFile:
    path: Path
    received_at: datetime
    uniqueid: str
    language: str  # "" when the dialplan did not know it
    caller: str  # digits and "+", as the dialplan filed them

    @property
    def name(self) -> str:
        return self.path.name


def parse_name(path: Path) -> SpoolFile | None:
    """The recording's facts from its file name; None for anything else in the folder."""
    match = NAME_RE.match(path.name)
    if match is None:
        return None
    lang = match["lang"] if match["lang"] in LANGUAGES else ""
    return SpoolFile(path, datetime.fromtimestamp(int(match["epoch"]), UTC), match["uniqueid"],
                     lang, match["caller"])


def finished_files(folder: Path, now: float | None = None) -> list[SpoolFile]:
    """Recordings whose call has ended (a .done file, or untouched for STALE_S), oldest first."""
    now = time.time() if now is None else now
    found = []
    for path in sorted(folder.glob("vm-*.wav")):
        spool = parse_name(path)
        if spool is None:
            continue
        try:
            done = path.with_suffix(".done").exists() or now - path.stat().st_mtime > STALE_S
        except FileNotFoundError:
            continue
        if done:
            found.append(spool)
    return sorted(found, key=lambda f: (f.received_at, f.name))


def duration_ms(path: Path) -> int:
    try:
        with wave.open(str(path)) as w:
            return int(w.getnframes() * 1000 / (w.getframerate() or 1))
    except (OSError, EOFError, wave.Error):
        return 0  # the call ended before any sound (a header only): kept, shown as 0 s


async def import_spool(app: App) -> int:
    """Import every finished recording not imported yet; → how many were new."""
    files = finished_files(app.settings.voicemail_dir)
    if not files:
        return 0
    async with app.sessions() as s:
        known = set(await s.scalars(select(Voicemail.file_name).where(
            Voicemail.file_name.in_([f.name for f in files]))))
    added = 0
    for spool in files:
        if spool.name in known:
            continue
        try:
            async with transaction(app.sessions) as s:
                await _add(s, app, spool)
            added += 1
        except IntegrityError:
            log.info("voicemail %s imported meanwhile by another process", spool.name)
    if added:
        log.info("imported %d voicemail message(s)", added)
    return added


async def import_loop(app: App, stop: asyncio.Event) -> None:
    """Import now and every IMPORT_EVERY_S until ``stop``; an outage only delays it."""
    while not stop.is_set():
        try:
            await import_spool(app)
        except Exception:  # the database may be the thing that is down
            log.exception("voicemail import failed; retrying in %.0f s", IMPORT_EVERY_S)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), IMPORT_EVERY_S)


async def _add(s: AsyncSession, app: App, spool: SpoolFile) -> Voicemail:
    number = try_normalise(spool.caller, app.settings.default_region) if spool.caller else None
    guardians = await guardians_by_phone(s, number.e164) if number else []
    children = await children_of(s, [g.id for g in guardians])
    if children:
        school_id: int | None = children[0].school_id
    else:  # an unknown caller: the school's inbox when the line serves one school
        schools = list(await s.scalars(select(School.id).limit(2)))
        school_id = schools[0] if len(schools) == 1 else None
    language = spool.language or (guardians[0].language if guardians else "")
    voicemail = Voicemail(
        file_name=spool.name, caller=spool.caller, caller_e164=number.e164 if number else None,
        language=language, uniqueid=spool.uniqueid, received_at=spool.received_at,
        duration_ms=duration_ms(spool.path), school_id=school_id,
        guardian_id=guardians[0].id if guardians else None, status=VoicemailStatus.NEW,
        imported_at=app.clock.now(),
    )
    s.add(voicemail)
    await s.flush()
    s.add_all(VoicemailChild(voicemail_id=voicemail.id, child_id=c.id) for c in children)
    return voicemail


def _visible(scope: StaffScope):  # type: ignore[no-untyped-def]
    """SQL condition: a voicemail this staff member may hear (their classes' children;
    for an admin also the school's unknown callers and those of a line with no one school)."""
    in_classes = exists().where(
        VoicemailChild.voicemail_id == Voicemail.id,
        Enrolment.child_id == VoicemailChild.child_id,
        Enrolment.class_id.in_(scope.class_ids),
    )
    if not scope.is_admin:
        return in_classes
    of_school = exists().where(
        VoicemailChild.voicemail_id == Voicemail.id,
        Child.id == VoicemailChild.child_id,
        Child.school_id == scope.school_id,
    )
    no_child = ~exists().where(VoicemailChild.voicemail_id == Voicemail.id)
    unknown = no_child & or_(Voicemail.school_id == scope.school_id,
                             Voicemail.school_id.is_(None))
    return or_(of_school, unknown)


async def inbox(session: AsyncSession, scope: StaffScope, class_id: int | None = None,
                pending_only: bool = False) -> list[Voicemail]:
    """Messages this person may hear: new ones first, then newest first (the latest
    INBOX_LIMIT); ``class_id``: only that class's."""
    query = (select(Voicemail).where(_visible(scope))
             .options(selectinload(Voicemail.children), selectinload(Voicemail.guardian))
             .order_by((Voicemail.status == VoicemailStatus.NEW).desc(),
                       Voicemail.received_at.desc(), Voicemail.id.desc())
             .limit(INBOX_LIMIT))
    if class_id is not None:
        query = query.where(exists().where(
            VoicemailChild.voicemail_id == Voicemail.id,
            Enrolment.child_id == VoicemailChild.child_id, Enrolment.class_id == class_id))
    if pending_only:
        query = query.where(Voicemail.status == VoicemailStatus.NEW)
    return list(await session.scalars(query))


async def visible(session: AsyncSession, scope: StaffScope, voicemail_id: int,
                  lock: bool = False) -> Voicemail | None:
    query = (select(Voicemail).where(Voicemail.id == voicemail_id, _visible(scope))
             .options(selectinload(Voicemail.children)))
    if lock:
        query = query.with_for_update()
    return await session.scalar(query)


def audio_path(app: App, voicemail: Voicemail) -> Path | None:
    """The recording on disk (only a name this module would have imported)."""
    if NAME_RE.match(voicemail.file_name) is None:
        return None
    path = app.settings.voicemail_dir / voicemail.file_name
    return path if path.is_file() else None


class VoicemailError(Exception):
    """The voicemail cannot be confirmed this way (already handled, not the caller's child)."""


async def confirm_absence(session: AsyncSession, voicemail: Voicemail, child_id: int,
                          reason: ReportReason, staff: Staff, now: datetime) -> AbsenceReport:
    """Make the message an absence report for the day the caller meant (by when they
    called and the school's cutoff), in the same transaction as marking it handled."""
    if voicemail.status != VoicemailStatus.NEW:
        raise VoicemailError("already handled")
    child = next((c for c in voicemail.children if c.id == child_id), None)
    if child is None:
        raise VoicemailError("not a child of this caller")
    school = await session.get_one(School, child.school_id)
    local = voicemail.received_at.astimezone(ZoneInfo(school.timezone))
    day = report_day(local, school.phone_cutoff, await school_calendar(session, school))
    draft = absences.ReportDraft(child.id, day, ReportKind.ABSENCE, reason)
    report = await absences.submit(session, draft, channel=Channel.PHONE,
                                   guardian_id=voicemail.guardian_id, now=now)
    report.seen_at, report.seen_by = now, staff.id  # the teacher who confirmed it heard it
    _handled(voicemail, VoicemailStatus.CONFIRMED, staff, now)
    voicemail.report_id = report.id
    return report


def mark_done(voicemail: Voicemail, staff: Staff, now: datetime) -> None:
    if voicemail.status != VoicemailStatus.NEW:
        raise VoicemailError("already handled")
    _handled(voicemail, VoicemailStatus.DONE, staff, now)


def _handled(voicemail: Voicemail, status: VoicemailStatus, staff: Staff, now: datetime) -> None:
    voicemail.status = status
    voicemail.handled_by = staff.id
    voicemail.handled_at = now
