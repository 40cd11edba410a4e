"""Hostile caller IDs into the absence flow: the call ends politely, the log keeps a trace.

Dialplan metacharacters, 200-character numbers, non-ASCII and control characters arrive
as CALLERID(num) from a carrier or a SIP scanner; on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from ivr.absence_flow import AbsenceCall
from models import AbsenceReport, CallLog
from tests.absence_fakes import FakeHangup, FakeVoice, ScriptedChannel
from tests.db_fixtures import Database
from tests.test_absence_flow import _family

HOSTILE = [
    "090${SHELL(id)}",
    "0901111;Dial(PJSIP/evil)",
    '"><script>alert(1)</script>',
    "9" * 200,
    "+" + "8" * 199,
    "山田花子",
    "090\x001111\n2222",
    "",
    "%s%s%s%n",
]
# Junk around a real number is read as that number, as a carrier's formatting would be.
FORMATTED = "090-1111-2222 ext. *#"


@pytest.mark.parametrize("caller", HOSTILE, ids=range(len(HOSTILE)))
async def test_hostile_caller_ids_are_treated_as_unknown_callers(
    db: Database, caller: str
) -> None:
    app, _kids, _mom = await _family(db)
    agi = ScriptedChannel(caller, [("absence.main_menu", "1")])
    result = await AbsenceCall(agi, app, FakeVoice(), FakeHangup).run()
    assert result.outcome != "reported"
    assert agi.sounds(), "the caller heard something"
    async with app.sessions() as s:
        assert list(await s.scalars(select(AbsenceReport))) == []
        [row] = list(await s.scalars(select(CallLog)))
    assert row.caller_e164 is None and len(row.caller) <= 40 and row.caller.isprintable()


async def test_a_formatted_number_is_still_recognised(db: Database) -> None:
    app, _kids, _mom = await _family(db)
    agi = ScriptedChannel(FORMATTED, [("absence.main_menu", "9")])
    await AbsenceCall(agi, app, FakeVoice(), FakeHangup).run()
    assert "absence.unregistered:ja" not in agi.sounds()
