"""Every CSV export makes formula-looking cells inert (CSV injection), numbers stay numbers."""

from __future__ import annotations

import csv
import io
from datetime import date

from models import Campaign, CampaignHousehold, Classroom
from models.db import transaction
from models.enums import CampaignStatus
from renraku.rules.csv_cells import cell
from renraku.services import broadcast, register
from tests.db_fixtures import Database
from tests.factories import make_child, make_class, make_school
from tests.web_world import NOW

HOSTILE = ['=HYPERLINK("http://evil.example","x")', "+cmd|' /C calc'!A0", "-2+3",
           "@SUM(1+1)", "\t=1+1", "\r=1+1"]


def test_formula_cells_get_an_apostrophe_and_numbers_do_not() -> None:
    for value in HOSTILE:
        assert cell(value) == "'" + value, value
    for value in ("+819012345678", "-3", "12", "山田 太郎", "a=b", "", 7, None):
        assert cell(value) == value, value


async def test_register_and_broadcast_exports_are_inert(sqlite_db: Database) -> None:
    async with transaction(sqlite_db.sessions) as s:
        school = await make_school(s)
        room = await make_class(s, school, "=1+1組", 1)
        kids = [await make_child(s, school, name, "", room) for name in HOSTILE]
        campaign = Campaign(school_id=school.id, title="=cmd", message={"ja": "x"},
                            target={"school": True}, status=CampaignStatus.RUNNING,
                            created_at=NOW)
        s.add(campaign)
        await s.flush()
        s.add(CampaignHousehold(campaign_id=campaign.id, phone_e164="+819012345678",
                                child_ids=[k.id for k in kids[:2]]))
    async with sqlite_db.sessions() as s:
        classroom = await s.get_one(Classroom, room.id)
        grid = await register.month_register(s, classroom, 2026, 12, until=date(2026, 12, 4))
        rows = list(csv.reader(io.StringIO(
            register.register_csv(grid, classroom.name, made_by="=x").decode("utf-8-sig"))))
        results = list(csv.reader(io.StringIO(await broadcast.results_csv(s, campaign.id))))
    assert rows[0][0].startswith("'=1+1組") and rows[0][1] == "出力: =x"
    names = [r[0] for r in rows[2:2 + len(HOSTILE)]]
    assert sorted(names) == sorted("'" + h for h in HOSTILE)
    assert results[1][1] == "+819012345678"  # the phone number stays as it is
    assert results[1][2].startswith("'")  # the children's names, joined, start with "="
