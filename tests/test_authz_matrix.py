"""Every route of the portal × every kind of visitor → the status they get (issue 19).

MATRIX below is the table, generated from the router: one row per route, one status per
role in ROLES order (see tests/security_world.py for who they are). A route without a row
fails the test with the row to add (the statuses it answered today): check each one is
what that visitor should get, then paste it. 302 for staff pages means "to the login
page"; 404 means "not yours" (a class, child or school outside the visitor's scope is not
even admitted to exist).

Requests run as the seeded world: every GET first, then the POSTs in order (empty forms
with the CSRF token, so most stop at validation), the sign-outs last. Every POST, PUT,
PATCH and DELETE route must also refuse a request without the CSRF token.
"""

# ruff: noqa: E501  (the table's rows are one route each)
from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.db_fixtures import Database
from tests.security_world import ROLES, SIGN_IN, SecurityWorld, build_security_world
from tests.test_guardian_authz import Client
from tests.web_fixtures import Portal
from webportal.security import UNSAFE_METHODS

# route → statuses for: anonymous guardian other_guardian teacher other_teacher nurse
#                       principal admin other_admin
MATRIX: dict[str, str] = {
    "GET /": "200 302 302 200 200 200 200 200 200",
    "GET /c/{child_id}": "302 200 404 302 302 302 302 302 302",
    "GET /c/{child_id}/absence/new": "302 200 404 302 302 302 302 302 302",
    "GET /c/{child_id}/absence/{report_id}": "302 200 404 302 302 302 302 302 302",
    "GET /c/{child_id}/calendar": "302 200 404 302 302 302 302 302 302",
    "GET /c/{child_id}/family/new": "302 200 404 302 302 302 302 302 302",
    "GET /c/{child_id}/icon": "302 404 404 302 302 302 302 302 302",  # no icon yet
    "GET /c/{child_id}/profile": "302 200 404 302 302 302 302 302 302",
    "GET /c/{child_id}/surveys": "302 200 404 302 302 302 302 302 302",
    "GET /dev/outbox": "200 200 200 200 200 200 200 200 200",  # testing only; else 404
    "GET /home": "302 302 302 302 302 302 302 302 302",
    "GET /ical/{token}.ics": "404 404 404 404 404 404 404 404 404",
    "GET /lang/{lang}": "302 302 302 302 302 302 302 302 302",
    "GET /login": "200 200 200 200 200 200 200 200 200",
    "GET /password/forgot": "200 200 200 200 200 200 200 200 200",
    "GET /password/reset/{id}/{code}": "410 410 410 410 410 410 410 410 410",
    "GET /r/{token}": "200 200 200 200 200 200 200 200 200",
    "GET /register/verify": "302 302 302 302 302 302 302 302 302",
    "GET /s/{token}": "404 404 404 404 404 404 404 404 404",
    "GET /m/{token}": "404 404 404 404 404 404 404 404 404",
    "GET /settings": "302 200 200 302 302 302 302 302 302",
    "GET /staff": "302 403 403 200 200 200 200 200 200",
    "GET /staff/": "302 403 403 200 200 200 200 200 200",
    "GET /staff/accounts": "302 403 403 403 403 403 403 200 200",
    "GET /staff/audit": "302 403 403 403 403 403 403 200 200",
    "GET /staff/broadcasts": "302 403 403 200 200 200 200 200 200",
    "GET /staff/broadcasts/new": "302 403 403 200 200 200 200 200 200",
    "GET /staff/broadcasts/{cid}": "302 403 403 404 404 404 404 200 404",
    "GET /staff/broadcasts/{cid}/progress.json": "302 403 403 404 404 404 404 200 404",
    "GET /staff/broadcasts/{cid}/results.csv": "302 403 403 404 404 404 404 200 404",
    "GET /staff/classes/{class_id}/guardians": "302 403 403 200 404 404 404 200 404",
    "GET /staff/classes/{class_id}/month": "302 403 403 200 404 404 404 200 404",
    "GET /staff/classes/{class_id}/month.csv": "302 403 403 200 404 404 404 200 404",
    "GET /staff/classes/{class_id}/month.pdf": "302 403 403 200 404 404 404 200 404",
    "GET /staff/classes/{class_id}/month/print": "302 403 403 200 404 404 404 200 404",
    "GET /staff/classes/{class_id}/proxy": "302 403 403 200 404 404 404 200 404",
    "GET /staff/classes/{class_id}/qr": "302 403 403 200 404 404 404 200 404",
    "GET /staff/classes/{class_id}/today": "302 403 403 200 404 404 404 200 404",
    "GET /staff/classes/{class_id}/today/rows": "302 403 403 200 404 404 404 200 404",
    "GET /staff/classes/{class_id}/today/stream": "302 403 403 200 404 404 404 200 404",
    "GET /staff/events": "302 403 403 200 200 200 200 200 200",
    "GET /staff/events/new": "302 403 403 200 200 200 200 200 200",
    "GET /staff/events/{event_id}/edit": "302 403 403 404 404 404 404 200 404",
    "GET /staff/login": "200 200 200 200 200 200 200 200 200",
    "GET /staff/notices": "302 403 403 200 200 200 200 200 200",
    "GET /staff/prompts": "302 403 403 403 403 403 403 200 200",
    "GET /staff/prompts/audio/{lang}/{key}/{version}.wav": "302 403 403 403 403 403 403 404 404",
    "GET /static": "200 200 200 200 200 200 200 200 200",
    "GET /verify/email/{id}/{code}": "410 410 410 410 410 410 410 410 410",
    "POST /c/{child_id}/absence/new": "302 400 404 302 302 302 302 302 302",
    "POST /c/{child_id}/absence/{report_id}": "302 400 404 302 302 302 302 302 302",
    "POST /c/{child_id}/absence/{report_id}/cancel": "302 302 404 302 302 302 302 302 302",
    "POST /c/{child_id}/family/new": "302 400 404 302 302 302 302 302 302",
    "POST /c/{child_id}/family/{event_id}/delete": "302 302 404 302 302 302 302 302 302",
    "POST /c/{child_id}/primary": "302 400 404 302 302 302 302 302 302",
    "POST /c/{child_id}/profile": "302 302 404 302 302 302 302 302 302",
    "POST /c/{child_id}/surveys/{survey_id}": "302 302 404 302 302 302 302 302 302",
    "POST /login": "401 401 401 401 401 401 401 401 401",
    "POST /password/forgot": "200 200 200 200 200 200 200 200 200",
    "POST /password/reset/{id}/{code}": "400 400 400 400 400 400 400 400 400",
    "POST /r/{token}": "400 400 400 400 400 400 400 400 400",
    "POST /r/{token}/add": "302 302 302 302 302 302 302 302 302",
    "POST /register/resend": "302 302 302 302 302 302 302 302 302",
    "POST /register/verify": "302 302 302 302 302 302 302 302 302",
    "POST /s/{token}": "404 404 404 404 404 404 404 404 404",
    "POST /settings/calendar": "302 302 302 302 302 302 302 302 302",
    "POST /settings/email": "302 400 400 302 302 302 302 302 302",
    "POST /settings/email/verify": "302 400 400 302 302 302 302 302 302",
    "POST /settings/language": "302 400 400 302 302 302 302 302 302",
    "POST /settings/phone": "302 400 400 302 302 302 302 302 302",
    "POST /settings/phone/verify": "302 400 400 302 302 302 302 302 302",
    "POST /staff/accounts": "302 403 403 403 403 403 403 400 400",
    "POST /staff/accounts/{staff_id}/active": "302 403 403 403 403 403 403 303 404",
    "POST /staff/accounts/{staff_id}/classes": "302 403 403 403 403 403 403 303 404",
    "POST /staff/broadcasts": "302 403 403 400 400 400 400 400 400",
    "POST /staff/broadcasts/{cid}/{action}": "302 403 403 404 404 404 404 303 404",
    # Without the page's resend key (stale): back to the broadcast, nothing resent
    "POST /staff/broadcasts/{cid}/resend": "302 403 403 404 404 404 404 303 404",
    "POST /staff/classes/{class_id}/children/{child_id}/qr/{action}": "302 403 403 303 404 404 404 303 404",
    "POST /staff/classes/{class_id}/proxy": "302 403 403 400 404 404 404 400 404",
    "POST /staff/classes/{class_id}/reports/{report_id}/seen": "302 403 403 303 404 404 404 303 404",
    "POST /staff/events/new": "302 403 403 400 400 400 400 400 400",
    "POST /staff/events/{event_id}/cancel": "302 403 403 404 404 404 404 303 404",
    "POST /staff/events/{event_id}/edit": "302 403 403 404 404 404 404 400 404",
    "POST /staff/login": "401 401 401 401 401 401 401 401 401",
    "POST /staff/notices": "302 403 403 403 403 403 403 400 400",
    "POST /staff/notices/{notice_id}/withdraw": "302 403 403 404 404 404 404 303 404",
    "POST /staff/prompts/{lang}/{key}/rollback": "302 403 403 403 403 403 403 400 400",
    "POST /staff/prompts/{lang}/{key}/upload": "302 403 403 403 403 403 403 400 400",
    "GET /healthz": "200 200 200 200 200 200 200 200 200",  # for load balancers: no data
    "GET /metrics": "200 200 200 200 200 200 200 200 200",  # by address (loopback), not role
    "GET /sounds/{lang}/renraku/{rel}": "404 404 404 404 404 404 404 404 404",  # IVR nodes: by address; no such sound
    "GET /staff/calendar": "302 403 403 200 200 200 200 200 200",
    "GET /staff/rollover": "302 403 403 403 403 403 403 200 200",
    "GET /staff/roster": "302 403 403 403 403 403 403 200 200",
    "GET /staff/roster.csv": "302 403 403 403 403 403 403 200 200",
    "GET /staff/school": "302 403 403 403 403 403 403 200 200",
    "GET /staff/voicemail": "302 403 403 200 200 200 200 200 200",
    "GET /staff/voicemail/{id}.wav": "302 403 403 404 404 404 404 404 404",  # no such message
    "POST /staff/accounts/{staff_id}/link": "302 403 403 403 403 403 403 200 404",
    "POST /staff/accounts/{staff_id}/phone": "302 403 403 403 403 403 403 303 404",
    "POST /staff/accounts/{staff_id}/role": "302 403 403 403 403 403 403 400 404",
    "POST /staff/calendar/changes": "302 403 403 400 400 400 400 400 400",
    "POST /staff/calendar/changes/{change_id}/delete": "302 403 403 404 404 404 404 404 404",
    "POST /staff/calendar/terms": "302 403 403 403 403 403 403 400 400",
    "POST /staff/calendar/terms/{term_id}": "302 403 403 403 403 403 403 404 404",
    "POST /staff/calendar/terms/{term_id}/delete": "302 403 403 403 403 403 403 404 404",
    "POST /staff/children/{child_id}/leave": "302 403 403 403 403 403 403 303 404",
    "POST /staff/rollover/confirm": "302 403 403 403 403 403 403 400 400",
    "POST /staff/rollover/preview": "302 403 403 403 403 403 403 200 400",
    "POST /staff/roster/admit": "302 403 403 403 403 403 403 404 404",
    "POST /staff/roster/classes": "302 403 403 403 403 403 403 400 400",
    "POST /staff/roster/second-class": "302 403 403 403 403 403 403 404 404",  # no class
    "POST /staff/roster/import": "302 403 403 403 403 403 403 400 400",
    "POST /staff/roster/import/confirm": "302 403 403 403 403 403 403 400 400",
    "POST /staff/school": "302 403 403 403 403 403 403 400 400",
    "POST /staff/voicemail/{id}/confirm": "302 403 403 404 404 404 404 404 404",
    "POST /staff/voicemail/{id}/done": "302 403 403 404 404 404 404 404 404",
    "GET /c/{child_id}/history": "302 200 404 302 302 302 302 302 302",
    "GET /history": "302 200 200 302 302 302 302 302 302",
    "GET /password/sms": "200 200 200 200 200 200 200 200 200",
    "GET /proxy-request": "200 200 200 200 200 200 200 200 200",
    "GET /proxy-request/sent": "200 200 200 200 200 200 200 200 200",
    "GET /proxy-request/form/{school_id}/{lang}.pdf": "200 200 200 200 200 200 200 200 200",  # the paper form: public
    "GET /staff/board": "302 403 403 200 200 200 200 200 200",
    "GET /staff/board/new": "302 403 403 200 200 200 200 200 200",
    "GET /staff/board/{message_id}": "302 403 403 404 404 404 404 404 404",  # no such message
    "GET /staff/board/{message_id}/files/{file_id}": "302 403 403 404 404 404 404 404 404",
    "GET /staff/broadcasts/{cid}/survey": "302 403 403 404 404 404 404 200 404",
    "GET /staff/children/{child_id}/notes": "302 403 403 200 404 200 200 200 404",
    "GET /staff/classes/{class_id}/roll/rows": "302 403 403 200 404 404 404 200 404",
    "GET /staff/health": "302 403 403 403 403 200 200 200 200",
    "GET /staff/health.csv": "302 403 403 403 403 200 200 200 200",
    "GET /staff/notices/{notice_id}/reads": "302 403 403 200 200 200 200 200 404",  # their classes' families
    "GET /staff/staff-calendar": "302 403 403 200 200 200 200 200 200",
    "GET /staff/summary": "302 403 403 403 403 403 200 200 200",
    "GET /staff/summary/stream": "302 403 403 403 403 403 200 200 200",
    "POST /password/sms": "400 400 400 400 400 400 400 400 400",
    "POST /password/sms/restart": "303 303 303 303 303 303 303 303 303",
    "POST /password/sms/verify": "303 303 303 303 303 303 303 303 303",
    "POST /proxy-request": "400 400 400 400 400 400 400 400 400",  # empty: refused, not counted
    "POST /staff/alerts/{alert_id}/read": "302 403 403 404 404 404 404 404 404",
    "POST /staff/board/new": "302 403 403 400 400 400 400 400 400",
    "POST /staff/board/prefs": "302 403 403 303 303 303 303 303 303",
    "POST /staff/board/{message_id}/pin": "302 403 403 404 404 404 404 404 404",
    "POST /staff/broadcasts/{cid}/survey": "302 403 403 404 404 404 404 400 404",
    "POST /staff/children/{child_id}/notes": "302 403 403 400 404 400 400 400 404",
    "POST /staff/children/{child_id}/notes/{note_id}": "302 403 403 404 404 404 404 404 404",
    "POST /staff/classes/{class_id}/followup": "302 403 403 303 404 404 404 303 404",
    "POST /staff/classes/{class_id}/proxy/requests/{request_id}/reject": "302 403 403 404 404 404 404 404 404",
    "POST /staff/classes/{class_id}/roll": "302 403 403 303 404 404 404 303 404",
    "POST /staff/health/threshold": "302 403 403 403 403 303 403 303 303",
    "POST /staff/notices/{notice_id}/resend": "302 403 403 303 303 303 303 303 404",
    "POST /staff/staff-calendar": "302 403 403 400 400 400 400 400 400",
    "POST /staff/staff-calendar/{entry_id}/delete": "302 403 403 404 404 404 404 404 404",
    "POST /staff/summary/followup": "302 403 403 403 403 403 303 303 303",
    "POST /staff/summary/settings": "302 403 403 403 403 403 303 303 303",
    "POST /logout": "302 302 302 302 302 302 302 302 302",
    "POST /staff/logout": "302 302 302 302 302 302 302 302 302",
}


def _values(canonical: str, sw: SecurityWorld) -> dict[str, Any]:
    """What each path parameter is filled with: the world's own objects."""
    w = sw.world
    family = canonical.startswith("/c/")
    return {
        # A child who leaves (転出) on its POST must not be one the later rows need.
        "class_id": w.class1, "school_id": w.school,
        "child_id": w.newkid if canonical.startswith("/staff/children/") else w.taro,
        "report_id": sw.report,
        "event_id": sw.family_event if family else sw.event, "notice_id": sw.notice,
        "staff_id": sw.spare_staff, "cid": sw.campaign, "survey_id": w.survey,
        "token": w.token_new if canonical.startswith("/r/") else "no-such-token",
        "action": "reissue" if "/qr/" in canonical else "pause",
        "lang": "ja" if canonical.startswith("/staff/") else "en",
        "key": "digit.0", "version": 1, "id": 1, "code": "no-such-code",
    }


def routes(app: web.Application) -> list[tuple[str, str]]:
    """(method, canonical path) of every route; HEAD is GET's twin."""
    found = set()
    for resource in app.router.resources():
        for route in resource:
            if route.method not in ("HEAD", "*"):
                found.add((route.method, resource.canonical))
    return sorted(found, key=lambda r: (r[0] != "GET", "logout" in r[1], r))


class _Missing(dict[str, Any]):
    """A parameter the world has no object for names one that does not exist: the route
    must then refuse (404, 403 or to the login page), never serve or fail."""

    def __missing__(self, key: str) -> int:
        return MISSING_ID


MISSING_ID = 987654


def concrete(canonical: str, sw: SecurityWorld) -> str:
    if canonical == "/static":
        return "/static/portal.css"
    return canonical.format_map(_Missing(_values(canonical, sw)))


async def _people(portal: Portal, sw: SecurityWorld) -> dict[str, Client]:
    people = {}
    for role in ROLES:
        people[role] = client = Client(portal)
        how = SIGN_IN[role]
        if how is not None:
            field = "identifier" if how[0] == "/login" else "email"
            await client.login(how[1], sw.password(role), how[0], field)
    return people


async def _status(client: Client, method: str, path: str, csrf: str | None) -> int:
    kwargs: dict[str, Any] = {"allow_redirects": False}
    if method != "GET":
        kwargs["data"] = {} if csrf is None else {"csrf_token": csrf}
    async with client.http.request(method, client.base + path, **kwargs) as resp:
        assert "Content-Security-Policy" in resp.headers, (method, path)
        return resp.status  # the body is not read: live streams would never end


async def test_every_route_has_its_row_and_answers_it(
    sqlite_db: Database, portal: Portal
) -> None:
    from webportal.app import create_app

    sw = await build_security_world(sqlite_db)
    table = routes(create_app(portal.app))
    people = await _people(portal, sw)
    try:
        tokens = {role: await c.token() for role, c in people.items()}
        unsafe = [(m, p) for m, p in table if m in UNSAFE_METHODS]
        forged = {(m, p, role): await _status(c, m, concrete(p, sw), None)
                  for m, p in unsafe for role, c in people.items()}
        got: dict[str, str] = {}
        for method, canonical in table:
            path = concrete(canonical, sw)
            statuses = []
            for role, c in people.items():
                statuses.append(str(await _status(c, method, path, tokens[role])))
                if method != "GET":  # a POST may have given the session a new token
                    tokens[role] = await c.token()
            got[f"{method} {canonical}"] = " ".join(statuses)
    finally:
        for c in people.values():
            await c.http.close()

    missing = {k: v for k, v in got.items() if k not in MATRIX}
    assert not missing, (
        "Routes without a row in tests/test_authz_matrix.py MATRIX. Check that each status "
        f"is right for {' '.join(ROLES)}, then add:\n"
        + "".join(f'    "{k}": "{v}",\n' for k, v in missing.items()))
    stale = sorted(set(MATRIX) - set(got))
    assert not stale, f"MATRIX rows for routes that no longer exist: {stale}"
    wrong = {k: (MATRIX[k], v) for k, v in got.items() if MATRIX[k] != v}
    assert not wrong, "expected vs got (" + " ".join(ROLES) + "):\n" + "\n".join(
        f"  {k}: {exp} != {act}" for k, (exp, act) in wrong.items())
    for (method, canonical, role), status in forged.items():
        allowed = MATRIX[f"{method} {canonical}"].split()[ROLES.index(role)] != "403"
        assert status == 403 or not allowed, (method, canonical, role, status)
        assert status == 403, f"{method} {canonical} as {role} without a CSRF token: {status}"
