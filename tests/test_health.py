"""The nurse's dashboard: counts against hand-computed data, the closure flag raised and
cleared, the CSV (formulas neutralised), symptoms from the guardian's web form, access."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta

from sqlalchemy import select

from models import AbsenceReport, Classroom
from models.db import transaction
from models.enums import ReportKind, ReportReason, Symptom
from renraku.rules.health import HealthFact, build, csv_safe
from renraku.services import absences
from tests.db_fixtures import Database
from tests.staff_fixtures import StaffPortal
from tests.staffroom_world import DAY, PASSWORD, REPORTED_AT, World
from tests.staffroom_world import build as build_world

D1, D2 = date(2026, 12, 3), date(2026, 12, 4)


def test_counts_and_flag_by_hand() -> None:
    facts = [
        HealthFact(1, D1, "absence", "illness", "fever"),
        HealthFact(1, D1, "absence", "illness", "influenza"),
        HealthFact(1, D1, "absence", "suspension", "covid19"),
        HealthFact(1, D2, "absence", "bereavement", None),
        HealthFact(2, D1, "late", "illness", "fever"),  # a late arrival is no sick day
        HealthFact(2, D2, "absence", "illness", None),
        HealthFact(3, D2, "absence", "illness", "fever"),  # a class not shown
        HealthFact(2, date(2026, 12, 1), "absence", "illness", None),  # outside the days
    ]
    a, b = build([(1, "1-1", 5), (2, "1-2", 4)], facts, [D1, D2], 20)
    d1 = a.days[0]
    assert (d1.absent, d1.illness, d1.suspension, d1.share_pct) == (3, 2, 1, 60.0)
    assert d1.symptoms == {"fever": 1, "influenza": 1, "covid19": 1, "gastroenteritis": 0,
                           "other": 0, "not_given": 0}
    assert (a.days[1].absent, a.days[1].illness, a.days[1].share_pct) == (1, 0, 20.0)
    assert sum(a.days[1].symptoms.values()) == 0  # bereavement has no symptom
    assert [d.flagged for d in a.days] == [True, True]  # 20 % reaches a 20 % threshold
    assert (b.days[0].absent, b.days[1].absent, b.days[1].symptoms["not_given"]) == (0, 1, 1)
    assert [d.flagged for d in b.days] == [False, True]  # 1 of 4 = 25 %
    a, b = build([(1, "1-1", 5), (2, "1-2", 4)], facts, [D1, D2], 30)
    assert [d.flagged for d in a.days] == [True, False] and not b.flagged
    empty, = build([(9, "empty", 0)], facts, [D1], 1)
    assert empty.days[0].share_pct == 0.0 and not empty.flagged


def test_csv_cells_never_start_a_formula() -> None:
    assert [csv_safe(v) for v in ("=1+1", "+81", "-2", "@SUM", "\tx", "1-1", 3)] == [
        "'=1+1", "'+81", "'-2", "'@SUM", "'\tx", "1-1", "3"]


async def _sick_week(db: Database, w: World) -> None:
    """1年1組 (5 children): 2 absent on DAY (青木 ill from the world + 馬場 influenza),
    1 on the day before (土井 fever); 1年2組 renamed to a formula-looking name."""
    async with transaction(db.sessions) as s:
        for child, day, reason, symptom in [
            (w.baba, DAY, ReportReason.SUSPENSION, Symptom.INFLUENZA),
            (w.doi, DAY - timedelta(days=1), ReportReason.ILLNESS, Symptom.FEVER),
            (w.eto, DAY - timedelta(days=20), ReportReason.ILLNESS, Symptom.FEVER),  # too old
        ]:
            await absences.submit(s, absences.ReportDraft(
                child, day, ReportKind.ABSENCE, reason, symptom=symptom),
                channel="web", guardian_id=None, now=REPORTED_AT)
        other = await s.get_one(Classroom, w.theirs)
        other.name = "=HYPERLINK(\"http://x\")"


def _row(html: str, class_id: int, day: date) -> dict[str, str]:
    section = html.split(f'data-class="{class_id}"', 1)[1].split("</section>", 1)[0]
    row = section.split(f'data-day="{day.isoformat()}"', 1)[1].split("</tr>", 1)[0]
    return dict(re.findall(r'<td class="([\w-]+)">([^<]*)</td>', row))


async def test_nurse_dashboard_threshold_and_csv(staff_portal: StaffPortal,
                                                 sqlite_db: Database) -> None:
    w = await build_world(sqlite_db.sessions)
    await _sick_week(sqlite_db, w)
    nurse = await staff_portal.client_as_staff("nurse@sakura.test", PASSWORD)
    page = await (await nurse.get("/staff/health")).text()
    today = _row(page, w.mine, DAY)
    assert today == {"absent": "2", "share": "40.0", "illness": "1", "suspension": "1",
                     "symptom-fever": "0", "symptom-influenza": "1", "symptom-covid19": "0",
                     "symptom-gastroenteritis": "0", "symptom-other": "0",
                     "symptom-not_given": "1"}
    assert _row(page, w.mine, DAY - timedelta(days=1))["symptom-fever"] == "1"
    assert f'data-day="{(DAY - timedelta(days=20)).isoformat()}"' not in page
    assert 'data-day="2026-11-29"' not in page  # a Sunday: not a school day
    mine = page.split(f'data-class="{w.mine}"', 1)[0].rsplit("<section", 1)[1]
    assert "flagged" in mine and 'class="closure-flag"' in page  # 40 % ≥ 20 %
    assert "馬場 二郎" in page and "インフルエンザ" in page  # the reports themselves
    # The flag clears when the nurse raises the threshold above 40 %
    r = await staff_portal.post(nurse, "/staff/health/threshold", {"threshold": "50"})
    assert r.status == 303
    page = await (await nurse.get("/staff/health")).text()
    mine = page.split(f'data-class="{w.mine}"', 1)[0].rsplit("<section", 1)[1]
    assert "flagged" not in mine and 'class="closure-flag"' not in page
    bad = await staff_portal.post(nurse, "/staff/health/threshold", {"threshold": "0"})
    assert bad.status == 303
    assert "1から100" in await (await nurse.get("/staff/health")).text()
    # CSV: the same numbers, a formula-looking class name neutralised
    body = await (await nurse.get("/staff/health.csv")).read()
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    mine_today = next(r for r in rows if r[0] == "1年1組" and r[1] == DAY.isoformat())
    assert mine_today[2:7] == ["5", "2", "40.0", "1", "1"] and mine_today[-1] == "0"
    assert any(r[0] == "'=HYPERLINK(\"http://x\")" for r in rows)
    assert not any(cell.startswith("=") for r in rows for cell in r)


async def test_who_sees_the_health_pages(staff_portal: StaffPortal, sqlite_db: Database) -> None:
    w = await build_world(sqlite_db.sessions)
    for who, see, change in [("nurse", 200, 303), ("principal", 200, 403), ("admin", 200, 303),
                             ("mori", 403, 403)]:
        client = await staff_portal.client_as_staff(f"{who}@sakura.test", PASSWORD)
        for path in ("/staff/health", "/staff/health.csv"):
            assert (await client.get(path)).status == see, (who, path)
        r = await staff_portal.post(client, "/staff/health/threshold", {"threshold": "25"})
        assert r.status == change, who
    guardian = await staff_portal.client_as_guardian(w.guardian_email)
    assert (await guardian.get("/staff/health", allow_redirects=False)).status == 403


async def test_guardian_web_form_sends_a_symptom(staff_portal: StaffPortal,
                                                 sqlite_db: Database) -> None:
    w = await build_world(sqlite_db.sessions)
    guardian = await staff_portal.client_as_guardian(w.guardian_email)
    form = f"/c/{w.baba}/absence/new"
    page = await (await guardian.get(form)).text()
    assert 'name="symptom"' in page and 'value="gastroenteritis"' in page
    token = await staff_portal.csrf(guardian, form)
    day = (DAY + timedelta(days=3)).isoformat()  # Monday
    for reason, symptom, kept in (("illness", "gastroenteritis", "gastroenteritis"),
                                  ("injury", "fever", None)):  # an injury keeps no symptom
        r = await guardian.post(form, data={
            "csrf_token": token, "day": day, "kind": "absence", "reason": reason,
            "symptom": symptom}, allow_redirects=False)
        assert r.status == 302, await r.text()
        async with sqlite_db.sessions() as s:
            report = await s.scalar(select(AbsenceReport).where(AbsenceReport.child_id == w.baba))
        assert report is not None and (report.reason, report.symptom) == (reason, kept)
    r = await guardian.post(form, data={"csrf_token": token, "day": day, "kind": "absence",
                                        "reason": "illness", "symptom": "plague"})
    assert r.status == 400
