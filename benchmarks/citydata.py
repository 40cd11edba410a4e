"""A city-sized database for load figures: 100 schools, 60,000 children, a year of reports.

Rows go in through SQLAlchemy Core in large batches (ORM objects would take minutes);
the generator is deterministic so SQLite and PostgreSQL hold the same data.
"""

from __future__ import annotations

import random
import sys
import time as _time
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from models import (
    AbsenceReport,
    Child,
    Classroom,
    Enrolment,
    Guardian,
    GuardianPhone,
    Guardianship,
    School,
    Term,
)

SCHOOLS = 100
CHILDREN = 60_000
YEAR_START = date(2026, 4, 6)
YEAR_END = date(2027, 3, 24)
ABSENCE_RATE = 0.03  # a typical Japanese school: about 3 % of children away on a day
BATCH = 5_000


def _progress(label: str, done: int, total: int) -> None:
    width = 30
    filled = int(width * done / max(total, 1))
    sys.stderr.write(f"\r  {label:<12} [{'#' * filled}{' ' * (width - filled)}] {done}/{total}")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def _school_days() -> list[date]:
    day, days = YEAR_START, []
    while day <= YEAR_END:
        if day.isoweekday() <= 5 and not (date(2026, 7, 21) <= day <= date(2026, 8, 31)):
            days.append(day)
        day += timedelta(days=1)
    return days


async def _batched(engine: AsyncEngine, table, rows: list[dict], label: str) -> None:  # type: ignore[no-untyped-def]
    for start in range(0, len(rows), BATCH):
        async with engine.begin() as conn:
            await conn.execute(insert(table), rows[start : start + BATCH])
        _progress(label, min(start + BATCH, len(rows)), len(rows))


async def build_city(engine: AsyncEngine, schools: int = SCHOOLS, children: int = CHILDREN,
                     seed: int = 7) -> dict[str, int]:
    """Fill an empty, migrated database; returns row counts. Skips if schools exist."""
    async with engine.connect() as conn:
        if await conn.scalar(select(func.count()).select_from(School)):
            counts = {}
            for model in (School, Child, AbsenceReport):
                counts[model.__tablename__] = await conn.scalar(
                    select(func.count()).select_from(model))
            return counts
    rng = random.Random(seed)
    started = _time.perf_counter()
    now = datetime(2027, 3, 25, tzinfo=UTC)
    await _batched(engine, School.__table__, [
        {"id": s, "name": f"市立第{s}小学校", "reading": "", "timezone": "Asia/Tokyo",
         "phone_cutoff": time(20, 0), "languages": ["ja", "en", "zh", "es"],
         "school_weekdays": [1, 2, 3, 4, 5]}
        for s in range(1, schools + 1)], "schools")
    await _batched(engine, Term.__table__, [
        {"school_id": s, "name": n, "start_date": a, "end_date": b}
        for s in range(1, schools + 1)
        for n, a, b in (("1学期", YEAR_START, date(2026, 7, 20)),
                        ("2学期", date(2026, 9, 1), YEAR_END))], "terms")
    per_school = children // schools
    classes_per_school = max(1, per_school // 30)
    class_rows: list[dict] = []
    child_rows: list[dict] = []
    enrol_rows: list[dict] = []
    guardian_rows: list[dict] = []
    phone_rows: list[dict] = []
    link_rows: list[dict] = []
    class_id = child_id = 0
    for s in range(1, schools + 1):
        first_class = class_id + 1
        for c in range(classes_per_school):
            class_id += 1
            class_rows.append({"id": class_id, "school_id": s, "academic_year": 2026,
                               "grade": c // 3 + 1, "name": f"{c // 3 + 1}年{c % 3 + 1}組",
                               "special_needs": False})
        for _ in range(per_school):
            child_id += 1
            child_rows.append({"id": child_id, "school_id": s, "name": f"児童{child_id}",
                               "reading": "", "display_name": "", "active": True})
            enrol_rows.append({"child_id": child_id,
                               "class_id": first_class + rng.randrange(classes_per_school)})
            guardian_rows.append({"id": child_id, "name": f"保護者{child_id}", "reading": "",
                                  "email": f"g{child_id}@example.jp", "email_verified": True,
                                  "language": "ja", "proxy_registered": False})
            phone_rows.append({"guardian_id": child_id, "e164": f"+8190{child_id:08d}",
                               "kind": "mobile", "verified": True})
            link_rows.append({"child_id": child_id, "guardian_id": child_id, "position": 1,
                              "relation": "母"})
    await _batched(engine, Classroom.__table__, class_rows, "classes")
    await _batched(engine, Child.__table__, child_rows, "children")
    await _batched(engine, Enrolment.__table__, enrol_rows, "enrolments")
    await _batched(engine, Guardian.__table__, guardian_rows, "guardians")
    await _batched(engine, GuardianPhone.__table__, phone_rows, "phones")
    await _batched(engine, Guardianship.__table__, link_rows, "guardianships")
    kinds = ["absence"] * 7 + ["late"] * 2 + ["early_leave"]
    reasons = ["illness"] * 6 + ["injury", "suspension", "bereavement", "other"]
    report_rows = []
    for day in _school_days():
        for cid in rng.sample(range(1, child_id + 1), int(child_id * ABSENCE_RATE)):
            kind = rng.choice(kinds)
            report_rows.append({
                "child_id": cid, "day": day, "kind": kind, "reason": rng.choice(reasons),
                "at_time": time(10, 30) if kind != "absence" else None, "memo": "",
                "channel": rng.choice(("phone", "web")), "guardian_id": cid,
                "status": "active", "created_at": now, "updated_at": now,
            })
    await _batched(engine, AbsenceReport.__table__, report_rows, "reports")
    sys.stderr.write(f"  city database built in {_time.perf_counter() - started:.0f} s\n")
    return {"schools": schools, "children": child_id, "absence_reports": len(report_rows)}
