"""Issue 14's journey, from an EMPTY database (no demo data) to the school's second year, in
real Chromium and through real Asterisk: the installer creates the school and its first
admin on the command line; the admin sets the reading and the cutoff, imports a CP932 roster
of three classes (a bad row refused, then fixed), adds a teacher, marks a class closure and
prints QR sheets; a guardian registers by QR and calls the absence line, which names the
school by its reading; the teacher sees the report. In April the rollover moves everyone up
a grade, the top grade graduates, and last year's register still downloads."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from playwright.async_api import expect
from sqlalchemy import select

from ivr import absence_flow
from ivr.fastagi import AGIChannel
from models import AbsenceReport, Child, Classroom, Enrolment
from renraku.app import App
from tests.absence_fakes import ToneVoice
from tests.asterisk_harness import PhoneLines
from tests.fresh_school import (
    BAD_ROSTER,
    BAD_ROW,
    ROSTER,
    first_admin,
    preview_roster,
    set_reading_and_cutoff,
    write_roster,
)
from tests.test_absence_calls import QUICK_ABSENCE, follow
from tests.web_fixtures import Portal, register_by_qr, register_csv

pytestmark = [pytest.mark.browser, pytest.mark.asterisk]

NAME, READING = "さくら市立さくら小学校", "さくらしりつさくらしょうがっこう"
ADMIN, ADMIN_PASSWORD = "head@sakura.example.jp", "head-password-1"
TEACHER, TEACHER_PASSWORD = "mori@sakura.example.jp", "teacher-pass-1"
# Friday 19:45 in Tokyo: past the 19:30 cutoff the admin sets (not the default 20:00), so a
# call reports for Monday 7 December.
EVENING = datetime(2026, 12, 4, 10, 45, tzinfo=UTC)
MONDAY = date(2026, 12, 7)
APRIL = datetime(2027, 4, 1, 0, 30, tzinfo=UTC)  # 09:30 on 1 April: the new year may start
WAIT = 30_000  # ms: the machine may be loaded


async def rooms_of(portal: Portal, year: int) -> dict[str, int]:
    async with portal.app.sessions() as s:
        rows = await s.execute(select(Classroom.name, Classroom.id).where(
            Classroom.academic_year == year))
        return {name: id_ for name, id_ in rows}


async def test_a_school_from_nothing_to_its_second_year(fresh_portal: Portal, lines: PhoneLines,
                                                       tmp_path: Path) -> None:
    portal = fresh_portal
    admin, _ = await first_admin(portal, ["--name", NAME, "--absence-line", "0120-123-456"],
                                 ADMIN, ADMIN_PASSWORD)
    admin.set_default_timeout(WAIT)
    await set_reading_and_cutoff(admin, READING, "19:30")

    # The roster: a row without its reading is refused and nothing is written; fixed, it goes in.
    await admin.click("nav.staff-nav a[href='/staff/roster']")
    await preview_roster(admin, write_roster(tmp_path / "bad.csv", BAD_ROSTER))
    await expect(admin.locator("#problems")).to_contain_text(BAD_ROW)
    await expect(admin.locator("#confirm-form")).to_have_count(0)
    assert await rooms_of(portal, 2026) == {}
    await preview_roster(admin, write_roster(tmp_path / "fixed.csv", ROSTER))
    await expect(admin.locator("#counts")).to_contain_text("新しいクラス：3")
    await admin.click("#confirm-form button")
    await expect(admin.locator(".flash")).to_contain_text("追加5名")
    old = await rooms_of(portal, 2026)
    assert set(old) == {"1年1組", "1年2組", "2年1組"}
    async with portal.app.sessions() as s:
        ichiro = await s.scalar(select(Child.id).where(Child.student_number == "26001"))

    # A teacher for 1年1組; a closure of 1年2組 on Monday, not of Ichiro's class.
    await admin.goto("/staff/accounts")
    form = admin.locator("#account-form")
    await form.locator("input[name=name]").fill("担任 森")
    await form.locator("input[name=email]").fill(TEACHER)
    await form.locator("select[name=role]").select_option("teacher")
    await form.locator("input[name=password]").fill(TEACHER_PASSWORD)
    await form.locator("label.check", has_text="1年1組").locator("input").check()
    await form.locator("button[type=submit]").click()
    await expect(admin.locator("#accounts")).to_contain_text(TEACHER)
    await admin.goto("/staff/calendar")
    await admin.select_option("#change-scope", "class")
    await admin.select_option("#change-class", str(old["1年2組"]))
    await admin.fill("#change-start", MONDAY.isoformat())
    await admin.fill("#change-name", "インフルエンザ")
    await admin.click("#change-form button[type=submit]")
    await expect(admin.locator("#changes tr.change")).to_contain_text("1年2組")

    # QR sheets for 1年1組, with the absence line's number; Ichiro's mother registers by his.
    await admin.goto(f"/staff/classes/{old['1年1組']}/qr")
    await expect(admin.locator(".sheet")).to_have_count(2)
    sheet = admin.locator(f".sheet[data-child='{ichiro}']")
    await expect(sheet.locator(".absence-line")).to_contain_text("0120-123-456")
    link = await sheet.locator(".url").inner_text()
    mother = await register_by_qr(portal, link.strip(), "青木 洋子", "090-3141-0001", "一郎",
                                  reading="あおき ようこ")
    mother.set_default_timeout(WAIT)

    # Her call, through real Asterisk to the real absence flow on the portal's clock.
    portal.clock.set(EVENING)
    line = App(lines.settings, portal.clock, portal.app.engine, portal.app.sessions)
    voice = ToneVoice(lines.settings)

    async def absence_line(agi: AGIChannel) -> None:
        await absence_flow.handle(agi, line, voice)

    lines.route("absence", absence_line)
    phone = lines.phone("09031410001")
    await phone.call(within=60)
    await follow(phone, QUICK_ABSENCE)
    await phone.wait_end(within=60)
    assert phone.played[0] == await voice.phrase("absence.welcome_school", "ja", school=READING)
    async with portal.app.sessions() as s:
        [report] = list(await s.scalars(select(AbsenceReport)))
    assert (report.child_id, report.day, report.channel) == (ichiro, MONDAY, "phone")

    # The teacher, this evening, opens the day reports are now made for.
    teacher = await portal.page()
    teacher.set_default_timeout(WAIT)
    await portal.login_staff(teacher, TEACHER, TEACHER_PASSWORD)
    await teacher.goto(f"/staff/classes/{old['1年1組']}/today")
    await teacher.click("#upcoming a")
    row = teacher.locator(f"#today-rows tr.report[data-report='{report.id}']")
    await expect(row).to_contain_text("青木 一郎")
    await expect(row).to_have_attribute("data-channel", "phone")

    # 1 April: the rollover (preview, then confirm), signed in afresh.
    portal.clock.set(APRIL)
    admin = await portal.page()
    admin.set_default_timeout(WAIT)
    await portal.login_staff(admin, ADMIN, ADMIN_PASSWORD)
    await admin.goto("/staff/roster")
    await admin.click("#rollover-link")
    await expect(admin.locator("input[name=to]")).to_have_value("2027")
    await admin.click("#rollover-form button[type=submit]")
    await expect(admin.locator("#rollover-summary")).to_contain_text("卒業2名（2年）")
    await admin.click("#rollover-confirm button")
    await admin.wait_for_url(f"{portal.base_url}/staff/roster?year=2027")
    new = await rooms_of(portal, 2027)
    assert set(new) == {"2年1組", "2年2組"}
    async with portal.app.sessions() as s:
        placed = await s.scalar(select(Enrolment.class_id).where(
            Enrolment.child_id == ichiro, Enrolment.class_id.in_(new.values())))
        graduated = set(await s.scalars(select(Child.student_number).where(~Child.active)))
    assert placed == new["2年1組"] and graduated == {"25001", "25002"}
    # Both years' 2年1組 on the accounts page, each with its year.
    await admin.goto("/staff/accounts")
    labels = admin.locator("#account-form label.check")
    await expect(labels.filter(has_text="2年1組")).to_have_text(
        ["2年1組 (2027年度)", "2年1組 (2026年度)"])

    # Last year's register of 1年1組 still downloads, with Monday's 欠.
    await admin.goto(f"/staff/classes/{old['1年1組']}/month?ym=2026-12")
    text = await register_csv(admin, tmp_path / "register.csv")
    assert "1年1組 2026年12月 出席簿" in text
    [ichiro_line] = [ln for ln in text.splitlines() if ln.startswith("青木 一郎,")]
    assert ichiro_line.split(",")[MONDAY.day] == "欠", ichiro_line
