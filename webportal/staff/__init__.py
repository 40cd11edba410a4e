"""The staff portal: attendance register, families and QR codes, events, notices, accounts.

``setup(app)`` adds the routes; every handler loads the logged-in staff member and checks
role and class scope on the server (webportal.staff.common, renraku.rules.permissions).
Templates live in webportal/templates/staff/.

Routes (all under /staff, all scope-checked):
  /[?year=]                           classes in scope with today's report counts, by year
  /classes/<id>/today[?day=]          today's register, live (…/today/stream SSE, …/today/rows)
  /classes/<id>/reports/<rid>/seen    POST: mark a report seen
  /classes/<id>/month[?ym=]           month grid; .csv (?bom=0 for plain UTF-8), /print, .pdf
  /classes/<id>/guardians             guardians per child, registration state, QR issue/revoke
  /classes/<id>/proxy                 proxy registration (代理登録) of a family
  /classes/<id>/qr[?child=]           printable QR registration sheets, family's language
  /events, /events/new, /events/<id>/edit, /events/<id>/cancel
  /notices, /notices/<id>/withdraw
  /school (admin)                     the school's settings: name, reading, cutoff, phone line…
  /accounts (admin)                   staff accounts, class assignment, disable
  /prompts (admin)                    phone prompts: versions, upload a recording, roll back
  /calendar[?year=]                   terms (admin), closures and extra school days, holidays
  /voicemail, /voicemail/<id>.wav     absence-line voicemails in scope; …/confirm, …/done (POST)
  /roster (admin)                     classes of a year, roster import/export, 転入; /rollover
  /audit (admin)                      who opened or exported registers and contacts, when
  /notices/<id>/reads, …/resend       who has read a notice; resend to the others
  /broadcasts/<id>/survey             a broadcast's survey: deadline, close now, questions
  /classes/<id>/roll, /summary, /alerts  roll call, follow-ups, morning summary (rollcall.py)
  /health, /health.csv                nurse's dashboard (nurse, principal, admin)
  /board, /board/new, /board/<id>     staff board (職員連絡) with attachments and read status
  /staff-calendar, /children/<id>/notes  staff-only calendar entries, notes about a child
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from renraku.app import App
from webportal.staff import (
    accounts,
    audit_log,
    board,
    calendar,
    families,
    health,
    notice_reads,
    prompts_admin,
    register,
    rollcall,
    roster,
    school_calendar,
    school_settings,
    staffnotes,
    survey_edit,
    voicemail,
)


async def _phone_reports_wake_registers(app: web.Application) -> AsyncIterator[None]:
    """When the call flow runs in this process, its reports wake open registers at once.

    (A FastAGI server in another process is covered by the registers' database poll.)
    """
    from ivr import absence_flow

    bus = register.change_bus(app)

    async def hook(_app: App, _report_id: int) -> None:
        bus.notify()

    absence_flow.on_report_confirmed.append(hook)
    yield
    absence_flow.on_report_confirmed.remove(hook)


def setup(app: web.Application) -> None:
    for module in (register, families, calendar, accounts, prompts_admin, school_calendar,
                   school_settings, voicemail, roster, audit_log, survey_edit, notice_reads,
                   rollcall, health, board, staffnotes):
        app.router.add_routes(module.routes)
    app.cleanup_ctx.append(calendar.retry_loop)
    app.cleanup_ctx.append(_phone_reports_wake_registers)
    app.on_shutdown.append(_end_streams)
    register.change_bus(app)


async def _end_streams(app: web.Application) -> None:
    register.change_bus(app).close()
