"""The portal's own pages work under its Content-Security-Policy (no inline script/style).

Chromium reports a blocked script or style as a console error; every page a guardian, a
teacher and an admin open is loaded and must log none, and the pages' scripts still run.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.db_fixtures import Database
from tests.security_world import SIGN_IN, SecurityWorld, build_security_world
from tests.web_fixtures import Portal

pytestmark = pytest.mark.browser


def _pages(sw: SecurityWorld) -> dict[str, list[str]]:
    w = sw.world
    room = f"/staff/classes/{w.class1}"
    return {
        "anonymous": ["/", "/login", "/staff/login", "/password/forgot",
                      f"/r/{w.token_new}"],
        "guardian": [f"/c/{w.taro}", f"/c/{w.taro}/calendar", f"/c/{w.taro}/absence/new",
                     f"/c/{w.taro}/absence/{sw.report}", f"/c/{w.taro}/surveys",
                     f"/c/{w.taro}/profile", f"/c/{w.taro}/family/new", "/settings"],
        "admin": ["/staff/", f"{room}/today", f"{room}/month", f"{room}/month/print",
                  f"{room}/guardians", f"{room}/proxy", f"{room}/qr", "/staff/events",
                  "/staff/events/new", f"/staff/events/{sw.event}/edit", "/staff/notices",
                  "/staff/broadcasts", "/staff/broadcasts/new",
                  f"/staff/broadcasts/{sw.campaign}", "/staff/accounts", "/staff/prompts",
                  "/staff/audit"],
    }


async def _sign_in(portal: Portal, page: Any, role: str, sw: SecurityWorld) -> None:
    how = SIGN_IN[role]
    if how is None:
        return
    path, ident = how
    await page.goto(path)
    if path == "/login":
        await portal.login(page, ident, sw.password(role))
    else:
        await page.fill("#email", ident)
        await page.fill("#password", sw.password(role))
        await page.click("#staff-login-form button[type=submit]")
        await page.wait_for_url("**/staff/")


async def test_pages_load_without_csp_violations(
    sqlite_db: Database, browser_portal: Portal
) -> None:
    sw = await build_security_world(sqlite_db)
    for role, paths in _pages(sw).items():
        page = await browser_portal.page()
        errors: list[str] = []

        def console(message: Any, errors: list[str] = errors) -> None:
            if message.type == "error" and not message.location.get("url", "").endswith(
                    "/favicon.ico"):  # the browser asks for one by itself; there is none
                errors.append(message.text)

        page.on("console", console)
        page.on("pageerror", lambda exc, e=errors: e.append(str(exc)))
        await _sign_in(browser_portal, page, role, sw)
        for path in paths:
            response = await page.goto(path)
            assert response is not None and response.status == 200, (role, path)
            assert "script-src 'self'" in response.headers["content-security-policy"]
            if path.endswith("/today"):  # today.js opened the live stream
                await page.wait_for_selector("#live-status[data-live=on]")
            if path == f"/staff/broadcasts/{sw.campaign}":  # broadcast_show.js drew the bar
                await page.wait_for_function(
                    "document.getElementById('percent-bar').style.width !== ''")
            assert not errors, (role, path, errors)
