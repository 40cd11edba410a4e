"""Four complete catalogs, and every page rendered in every language without a missing string."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from models import RegistrationToken
from models.db import transaction
from renraku.services import absences
from renraku.services import staff as staff_svc
from renraku.settings import LANGUAGES
from tests.db_fixtures import Database
from tests.test_guardian_authz import Client
from tests.web_fixtures import Portal
from tests.web_world import build_world
from webportal import i18n


@pytest.mark.parametrize("lang", LANGUAGES)
def test_catalog_complete_and_well_formed(lang: str) -> None:
    assert i18n.missing(lang) == [], f"untranslated in {lang}"
    problems = [(m.id, errors) for m, errors in i18n.read_catalog(lang).check()]
    assert problems == []  # e.g. a %(name)s placeholder lost in translation


def test_every_string_in_the_code_is_in_the_catalogs() -> None:
    used = {m.id for m in i18n.extract() if m.id}
    for lang in LANGUAGES:
        known = {m.id for m in i18n.read_catalog(lang) if m.id}
        assert used - known == set(), f"run `python -m webportal.i18n update` ({lang})"


def test_accept_language_negotiation() -> None:
    assert i18n.negotiate("es-ES,es;q=0.9,en;q=0.8") == "es"
    assert i18n.negotiate("fr-FR, zh-CN;q=0.5, en;q=0.7") == "en"
    assert i18n.negotiate("de") is None


GUARDIAN_PAGES = ["/c/{taro}", "/c/{taro}/calendar", "/c/{taro}/calendar?m=2027-01",
                  "/c/{taro}/absence/new", "/c/{taro}/surveys", "/c/{taro}/family/new",
                  "/c/{taro}/profile", "/settings", "/c/{hana}", "/c/{taro}/absence/{rid}"]
PUBLIC_PAGES = ["/", "/login", "/password/forgot", "/password/reset/999/nope", "/staff/login",
                "/r/{token}", "/r/unknown-token", "/no-such-page"]
STAFF_PAGES = ["/staff/", "/staff/classes/{class1}/today", "/staff/classes/{class1}/month",
               "/staff/classes/{class1}/guardians", "/staff/classes/{class1}/proxy",
               "/staff/classes/{class1}/qr", "/staff/events", "/staff/events/new",
               "/staff/notices", "/staff/accounts", "/staff/broadcasts", "/staff/broadcasts/new"]


async def _walk(client: Client, paths: list[str], lang: str, ids: dict) -> None:
    await client.get(f"/lang/{lang}?next=/")
    for raw in paths:
        path = raw.format(**ids)
        status, html = await client.get(path)
        assert status in (200, 404, 410), (path, status)
        if 'class="site"' in html:  # printed sheets are in the family's language instead
            assert f'<html lang="{lang}"' in html, path
        missing = re.findall(f"{i18n.MARK_OPEN}(.*?){i18n.MARK_CLOSE}", html)
        assert missing == [], (lang, path, missing)


@pytest.mark.parametrize("lang", LANGUAGES)
async def test_every_page_in_every_language(
    lang: str, portal: Portal, sqlite_db: Database
) -> None:
    world = await build_world(sqlite_db)
    async with transaction(sqlite_db.sessions) as s:
        await staff_svc.create_staff(s, world.school, name="校長", email="admin@school.jp",
                                     role="admin", password="admin-pass-123",
                                     class_ids=[world.class1])
        report = await absences.submit(
            s, absences.ReportDraft(world.taro, portal.clock.now().date(), "late", "other",
                                    None), channel="web", guardian_id=world.hanako,
            now=portal.clock.now())
        token = await s.scalar(select(RegistrationToken.token).where(
            RegistrationToken.child_id == world.newkid))
    ids = {"taro": world.taro, "hana": world.hana, "rid": report.id, "token": token,
           "class1": world.class1}
    anonymous, guardian, staff = Client(portal), Client(portal), Client(portal)
    try:
        await _walk(anonymous, PUBLIC_PAGES, lang, ids)
        await guardian.login("hanako@example.jp")
        await _walk(guardian, GUARDIAN_PAGES, lang, ids)
        await staff.login("admin@school.jp", "admin-pass-123", "/staff/login", "email")
        await _walk(staff, STAFF_PAGES, lang, ids)
    finally:
        for client in (anonymous, guardian, staff):
            await client.http.close()
