"""The paper proxy registration request form (代理登録依頼書): a PDF per school and language,
its fonts embedded (Japanese and Chinese print on any printer), its texts from the
catalogs, the school's name and number on it; linked from the start page, the QR page for
landlines, the web request form and the staff's guardian and proxy pages; printed once per
page content (PdfCache); downloaded in Chromium from the start page in two languages."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import expect
from pypdf import PdfReader
from pypdf.generic import DictionaryObject
from sqlalchemy import update

from models import School
from models.db import transaction
from renraku.rules.proxy_request import check_request
from renraku.services import pdf, proxy_requests
from tests.db_fixtures import Database
from tests.test_guardian_authz import Client
from tests.test_proxy_requests import _teachers
from tests.web_fixtures import HAVE_CHROMIUM, Portal
from tests.web_world import World, build_world

SCHOOL = "さくら市立さくら小学校"
TITLES = {  # each language's title, from the catalogs; the Japanese name on every form
    "ja": "代理登録依頼書", "en": "Proxy registration request form",
    "zh": "代理登记申请书", "es": "Solicitud de registro por la escuela",
}
needs_chromium = pytest.mark.skipif(
    not HAVE_CHROMIUM, reason="headless Chromium not installed (make setup installs it)")


async def _school(db: Database) -> World:
    world = await build_world(db)
    async with transaction(db.sessions) as s:
        await s.execute(update(School).where(School.id == world.school).values(
            name=SCHOOL, absence_line_e164="+81120000123"))
    return world


def _fonts(reader: PdfReader) -> list[tuple[str, DictionaryObject]]:
    """(name, font) of every font the pages use, composite fonts by their descendant."""
    out = []
    for page in reader.pages:
        resources = page.get("/Resources")
        fonts = resources.get_object().get("/Font") if resources else None
        for name, ref in (fonts.get_object().items() if fonts else ()):
            font = ref.get_object()
            if font.get("/Subtype") == "/Type0":
                font = font["/DescendantFonts"][0].get_object()
            out.append((str(name), font))
    return out


def _unembedded(reader: PdfReader) -> list[str]:
    bad = []
    for name, font in _fonts(reader):
        descriptor = font.get("/FontDescriptor")
        if descriptor is None or not ({"/FontFile2", "/FontFile3"}
                                      & set(descriptor.get_object().keys())):
            bad.append(f"{name} {font.get('/Subtype')} {font.get('/BaseFont')}")
    return bad


def _text(body: bytes) -> str:
    reader = PdfReader(io.BytesIO(body))
    return "".join("".join(page.extract_text().split()) for page in reader.pages)


@needs_chromium
async def test_paper_form_in_four_languages_with_fonts_embedded(
    portal: Portal, sqlite_db: Database
) -> None:
    world = await _school(sqlite_db)
    # A waiting request: the public form shows nothing of it (it reads the school only).
    clean, _errors = check_request(
        {"class_id": str(world.class1), "child_name": "鈴木 三郎", "guardian_name": "鈴木 ハナ",
         "relation": "mother", "phone": "03-3000-5555", "language": "ja", "note": "秘密XQ"},
        {world.class1})
    assert clean is not None
    async with transaction(sqlite_db.sessions) as s:
        await proxy_requests.submit(s, clean, portal.clock.now())
    http = aiohttp.ClientSession()
    try:
        for lang, title in TITLES.items():
            async with http.get(
                    f"{portal.base_url}/proxy-request/form/{world.school}/{lang}.pdf") as resp:
                assert resp.status == 200, lang
                assert resp.headers["Content-Type"] == "application/pdf"
                assert (f'filename="proxy-request-form-{world.school}-{lang}.pdf"'
                        in resp.headers["Content-Disposition"])
                body = await resp.read()
            reader = PdfReader(io.BytesIO(body))
            assert len(reader.pages) == 1, lang  # one A4 sheet to hand over
            assert _fonts(reader), lang
            assert _unembedded(reader) == [], lang
            text = _text(body)
            for wanted in (title, "代理登録依頼書", SCHOOL, "0120-000-123"):
                assert "".join(wanted.split()) in text, (lang, wanted, text)
            assert "秘密XQ" not in text and "3000-5555" not in text and "ハナ" not in text
        # Each language's own words (not the English msgid) on its form.
        assert "担任" in _text(await _get(http, portal, world, "ja"))
        assert "班主任" in _text(await _get(http, portal, world, "zh"))
        assert "Firma" in _text(await _get(http, portal, world, "es"))
        # A renamed school gets a new form at once (the cache is keyed by the page).
        async with transaction(sqlite_db.sessions) as s:
            await s.execute(update(School).where(School.id == world.school).values(
                name="さくら市立もみじ小学校", absence_line_e164=None))
        text = _text(await _get(http, portal, world, "ja"))
        assert "もみじ小学校" in text and SCHOOL not in text and "0120" not in text
        # No such school or language; no id a database could choke on.
        for path in (f"/proxy-request/form/{world.school + 99}/ja.pdf",
                     f"/proxy-request/form/{world.school}/fr.pdf",
                     "/proxy-request/form/" + "9" * 40 + "/ja.pdf"):
            async with http.get(portal.base_url + path) as resp:
                assert resp.status == 404, path
    finally:
        await http.close()


async def _get(http: aiohttp.ClientSession, portal: Portal, world: World, lang: str) -> bytes:
    async with http.get(
            f"{portal.base_url}/proxy-request/form/{world.school}/{lang}.pdf") as resp:
        assert resp.status == 200
        return await resp.read()


async def test_pdf_cache_prints_each_page_once() -> None:
    runs: list[str] = []
    gate = asyncio.Event()

    async def chromium(html: str) -> bytes:
        runs.append(html)
        await gate.wait()
        if html == "broken":
            raise pdf.PdfUnavailable("no chromium")
        return b"%PDF " + html.encode()

    cache = pdf.PdfCache(size=2, make=chromium)
    # Ten families at once: one print, the same file for all.
    waiting = [asyncio.create_task(cache.pdf("<p>a</p>")) for _ in range(10)]
    await asyncio.sleep(0.05)
    gate.set()
    assert set(await asyncio.gather(*waiting)) == {b"%PDF <p>a</p>"}
    assert runs == ["<p>a</p>"]
    assert await cache.pdf("<p>a</p>") == b"%PDF <p>a</p>" and len(runs) == 1
    # Another page (another school, language or name) is another print.
    await cache.pdf("<p>b</p>")
    assert len(runs) == 2
    # A failure is not kept: the next request tries again.
    for _ in range(2):
        with pytest.raises(pdf.PdfUnavailable):
            await cache.pdf("broken")
    assert runs.count("broken") == 2
    # Many different pages at once: two Chromiums at a time, the others wait their turn.
    gate.clear()
    cache = pdf.PdfCache(size=8, make=chromium)
    before = len(runs)
    waiting = [asyncio.create_task(cache.pdf(f"<p>{n}</p>")) for n in range(5)]
    await asyncio.sleep(0.05)
    assert len(runs) - before == 2
    gate.set()
    assert len(await asyncio.gather(*waiting)) == 5 and len(runs) - before == 5
    cache = pdf.PdfCache(size=2, make=chromium)
    for page in ("<p>a</p>", "<p>b</p>"):
        await cache.pdf(page)
    # Beyond its size the least recently used page goes.
    await cache.pdf("<p>a</p>")
    await cache.pdf("<p>c</p>")
    await cache.pdf("<p>a</p>")
    await cache.pdf("<p>b</p>")
    assert runs[-2:] == ["<p>c</p>", "<p>b</p>"]


async def test_paper_form_links_on_start_qr_request_and_staff_pages(
    portal: Portal, sqlite_db: Database
) -> None:
    world = await _school(sqlite_db)
    await _teachers(sqlite_db, world)  # 森 teaches class 1
    links = [f'href="/proxy-request/form/{world.school}/{lang}.pdf"' for lang in TITLES]
    family, teacher = Client(portal), Client(portal)
    try:
        for path in ("/", "/proxy-request"):
            status, html = await family.get(path)
            assert status == 200 and all(link in html for link in links), path
        # A landline typed on the QR registration page: the form of the child's school.
        status, html = await family.send(f"/r/{world.token_new}", {
            "name": "鈴木 ハナ", "relation": "grandmother", "phone": "03-3000-4444",
            "password": "new-pass-123", "language": "ja"})
        assert "reg-landline" in html and all(link in html for link in links), status
        await teacher.login("mori@x.jp", "teacher-pass-1", "/staff/login", "email")
        for page in ("proxy", "guardians"):
            status, html = await teacher.get(f"/staff/classes/{world.class1}/{page}")
            assert status == 200 and all(link in html for link in links), page
    finally:
        await family.http.close()
        await teacher.http.close()


@pytest.mark.browser
async def test_family_downloads_the_paper_form_in_two_languages(
    browser_portal: Portal, sqlite_db: Database, tmp_path: Path
) -> None:
    world = await _school(sqlite_db)
    page: Any = await browser_portal.page()
    await page.goto("/")
    forms = page.locator(f"#paper-forms li[data-school='{world.school}']")
    await expect(forms).to_contain_text(SCHOOL)
    for lang in ("ja", "zh"):
        async with page.expect_download() as info:
            await forms.locator(f"a.paper-form[hreflang={lang}]").click()
        download = await info.value
        assert download.suggested_filename == f"proxy-request-form-{world.school}-{lang}.pdf"
        target = tmp_path / download.suggested_filename
        await download.save_as(target)
        body = await asyncio.to_thread(target.read_bytes)
        reader = PdfReader(io.BytesIO(body))
        assert _unembedded(reader) == []
        text = _text(body)
        assert TITLES[lang] in text and SCHOOL in text and "0120-000-123" in text, text
