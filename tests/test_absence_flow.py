"""The absence call flow on a scripted channel: who calls, menus, writes, hang-ups."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time

import pytest
from sqlalchemy import select

from ivr import absence_flow
from ivr.absence_flow import AbsenceCall
from models import AbsenceReport, AbsenceReportChange, CallLog, Guardian
from models.db import transaction
from models.enums import ReportStatus
from renraku.app import App
from renraku.clock import FakeClock
from renraku.settings import Settings
from tests.absence_fakes import FakeHangup, FakeVoice, ScriptedChannel
from tests.db_fixtures import Database
from tests.factories import make_child, make_guardian, make_school
from tests.web_fixtures import Mailbox

# Thursday 3 December 2026, 10:00 in Tokyo
NOW = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)
THU, FRI = date(2026, 12, 3), date(2026, 12, 4)
MOM = "090-1111-2222"
MOM_E164 = "+819011112222"


async def _family(db: Database, lang: str = "ja") -> tuple[App, list[int], int]:
    app = App(Settings(), FakeClock(NOW, frozen=True), db.engine, db.sessions)
    async with transaction(app.sessions) as s:
        first = await make_school(s, "第一小学校")
        second = await make_school(s, "第二中学校", cutoff=time(8, 0))  # past cutoff at 10:00
        taro = await make_child(s, first, "山田太郎", "やまだたろう")
        jiro = await make_child(s, second, "山田次郎", "やまだじろう")
        mom = await make_guardian(s, "山田花子", MOM, lang, (taro, jiro))
        return app, [taro.id, jiro.id], mom.id


async def _call(app: App, agi: ScriptedChannel) -> absence_flow.CallResult:
    return await AbsenceCall(agi, app, FakeVoice(), FakeHangup).run()


async def _reports(app: App) -> list[AbsenceReport]:
    async with app.sessions() as s:
        return list(await s.scalars(select(AbsenceReport).order_by(AbsenceReport.id)))


async def _log(app: App) -> list[tuple[str, str | None]]:
    async with app.sessions() as s:
        return [(r.outcome, r.caller_e164) for r in await s.scalars(select(CallLog))]


async def test_sibling_absence_recorded_with_own_school_day(db: Database) -> None:
    app, (_, jiro), mom = await _family(db)
    agi = ScriptedChannel(MOM, [
        ("absence.main_menu", "1"),
        ("absence.child_option", "2"),  # Jiro: said second, but the first sound is Taro's
        ("absence.kind_menu", "1"),
        ("absence.reason_menu", "1"),
        ("absence.symptom_menu", "3"),  # COVID-19, for the nurse's counts
        ("absence.confirm_keys", "1"),
        ("absence.after_menu", "2"),
    ])
    result = await _call(app, agi)
    assert result.outcome == "reported"
    [r] = await _reports(app)
    # Jiro's school has an 08:00 cutoff: at 10:00 the report is for Friday
    assert (r.child_id, r.day, r.kind, r.reason, r.symptom, r.channel, r.guardian_id,
            r.status) == (jiro, FRI, "absence", "illness", "covid19", "phone", mom, "active")
    assert "absence.symptom.covid19:ja" in agi.sounds()  # read back before the confirm
    sounds = agi.sounds()
    assert "absence.child_option:ja:digit=1:name=やまだたろう" in sounds
    assert any(s.startswith("absence.on_date:ja:date=12月4日") for s in sounds)
    # The day is said up front too, before the kind of report is chosen.
    assert sounds.index("absence.report_for_date:ja:date=12月4日 金曜日") < sounds.index(
        "absence.kind_menu:ja")
    assert sounds[-1] == "absence.goodbye:ja"
    assert await _log(app) == [("reported", MOM_E164)]


async def test_a_key_just_too_late_for_the_symptom_answers_it_not_the_confirm(
        db: Database) -> None:
    """The symptom question times out as the caller's "fever" key is on its way (seen at the
    morning peak on a loaded machine): that key lands on whatever the line plays next. It
    must answer the question asked again, not confirm a read-back the caller never heard
    (and leave their own confirm key to open the main menu)."""
    app, (taro, _), _ = await _family(db)
    agi = ScriptedChannel(MOM, [
        ("absence.main_menu", "1"), ("absence.child_option", "1"), ("absence.kind_menu", "1"),
        ("absence.reason_menu", "1"),
        ("absence.symptom_menu", ""),  # silence: the Read times out…
        ("absence.", "1"),  # …and the late key interrupts the next sound, whatever it is
        ("absence.confirm_keys", "1"), ("absence.after_menu", "2"),
    ])
    result = await _call(app, agi)
    assert result.outcome == "reported"
    [r] = await _reports(app)
    assert (r.child_id, r.reason, r.symptom) == (taro, "illness", "fever")
    sounds = agi.sounds()
    assert sounds.index("absence.symptom.fever:ja") < sounds.index("absence.confirm_keys:ja")
    assert sounds[-1] == "absence.goodbye:ja"


async def test_late_with_time_then_change_and_cancel_on_a_second_call(db: Database) -> None:
    app, (taro, jiro), _ = await _family(db, "en")
    await _call(app, ScriptedChannel(MOM, [
        ("absence.main_menu", "1"), ("absence.child_option", "1"), ("absence.kind_menu", "2"),
        ("absence.time_late", "1030"), ("absence.reason_menu", "2"),
        ("absence.confirm_keys", "1"), ("absence.after_menu", "1"),
        ("absence.main_menu", "1"), ("absence.child_option", "2"), ("absence.kind_menu", "1"),
        ("absence.reason_menu", "5"), ("absence.confirm_keys", "1"), ("absence.after_menu", "2"),
    ]))
    late, absent = await _reports(app)
    assert (late.child_id, late.day, late.kind, late.at_time, late.reason) == (
        taro, THU, "late", time(10, 30), "injury")
    assert (absent.child_id, absent.day, absent.kind) == (jiro, FRI, "absence")
    # Second call: the first listed report (Taro, Thursday) is changed, the next cancelled.
    agi = ScriptedChannel(MOM, [
        ("absence.main_menu", "2"),
        ("absence.report_keys", "2"), ("absence.kind_menu", "3"), ("absence.time_early", "#"),
        ("absence.reason_menu", "4"), ("absence.confirm_keys", "1"),
        ("absence.after_menu", "1"), ("absence.main_menu", "2"),
        ("absence.report_keys", "3"), ("absence.report_keys", "1"),
        ("absence.cancel_confirm", "1"), ("absence.after_menu", "2"),
    ])
    result = await _call(app, agi)
    assert result.outcome == "cancelled,changed"
    changed, cancelled = await _reports(app)
    assert (changed.kind, changed.at_time, changed.reason, changed.status) == (
        "early_leave", None, "bereavement", "active")
    assert cancelled.status == ReportStatus.CANCELLED and cancelled.cancelled_at is not None
    async with app.sessions() as s:
        history = [(c.report_id, c.action) for c in await s.scalars(
            select(AbsenceReportChange).order_by(AbsenceReportChange.id))]
    assert history == [(late.id, "created"), (absent.id, "created"),
                       (late.id, "changed"), (absent.id, "cancelled")]
    assert "absence.kind.late:en" in agi.sounds()  # read back before the change
    assert any(x.startswith("absence.at_time:en:time=10:30 AM") for x in agi.sounds())


async def test_withheld_and_unregistered_record_nothing(db: Database) -> None:
    app, _, _ = await _family(db)
    withheld = ScriptedChannel("anonymous")
    assert (await _call(app, withheld)).outcome == "withheld"
    assert withheld.sounds() == [f"absence.withheld:{x}" for x in ("ja", "en", "zh", "es")]
    assert withheld.hung_up
    stranger = ScriptedChannel("0312345678")
    assert (await _call(app, stranger)).outcome == "unregistered"
    assert stranger.played == [(lang, f"absence.unregistered:{lang}")
                               for lang in ("ja", "en", "zh", "es")]
    assert await _reports(app) == []
    assert await _log(app) == [("withheld", None), ("unregistered", "+81312345678")]


async def test_shared_landline_unites_children_and_remembers_language(db: Database) -> None:
    app = App(Settings(), FakeClock(NOW, frozen=True), db.engine, db.sessions)
    async with transaction(app.sessions) as s:
        school = await make_school(s)
        a = await make_child(s, school, "佐藤一郎", "さとういちろう")
        b = await make_child(s, school, "佐藤二郎", "さとうじろう")
        await make_guardian(s, "父", "03-5555-0000", "ja", (a,))
        await make_guardian(s, "母", "03-5555-0000", "ja", (b,))
    agi = ScriptedChannel("0355550000", [
        ("absence.main_menu", "9"), ("absence.language_option:es", "4"),
        ("absence.main_menu", "1"), ("absence.child_option", "2"),
        ("absence.kind_menu", "1"), ("absence.reason_menu", "3"),
        ("absence.confirm_keys", "1"), ("absence.after_menu", "2"),
    ])
    await _call(app, agi)
    # The language menu speaks each language in that language.
    assert [x for x in agi.played if x[1].startswith("absence.language_option")] == [
        (lang, f"absence.language_option:{lang}:digit={i}")
        for i, lang in enumerate(("ja", "en", "zh", "es"), 1)]
    assert ("es", "absence.goodbye:es") == agi.played[-1]
    [r] = await _reports(app)
    assert (r.child_id, r.reason) == (b.id, "suspension")
    async with app.sessions() as s:
        assert set(await s.scalars(select(Guardian.language))) == {"es"}


async def test_three_failures_say_goodbye_and_write_nothing(db: Database) -> None:
    app, _, _ = await _family(db)
    agi = ScriptedChannel(MOM, [("absence.main_menu", "7"), ("absence.main_menu", "#")])
    assert (await _call(app, agi)).outcome == "too_many_failures"
    sounds = agi.sounds()
    assert sounds.count("absence.invalid:ja") == 2
    assert sounds[-1] == "absence.too_many_failures:ja" and agi.hung_up
    assert await _reports(app) == []


HANG_UP_STEPS = ["absence.welcome", "absence.main_menu", "absence.child_option",
                 "absence.kind_menu", "absence.time_late", "absence.reason_menu",
                 "absence.about_child", "absence.confirm_keys"]


@pytest.mark.parametrize("step", HANG_UP_STEPS)
async def test_hang_up_before_confirming_writes_nothing(sqlite_db: Database, step: str) -> None:
    app, _, _ = await _family(sqlite_db)
    agi = ScriptedChannel(MOM, [
        ("absence.main_menu", "1"), ("absence.child_option", "1"), ("absence.kind_menu", "2"),
        ("absence.time_late", "0930#"), ("absence.reason_menu", "1"),
        ("absence.confirm_keys", "1"),
    ], hang_up_at=step)
    assert (await _call(app, agi)).outcome == "hung_up"
    assert await _reports(app) == []
    assert await _log(app) == [("hung_up", MOM_E164)]


async def test_hook_runs_after_commit(sqlite_db: Database) -> None:
    app, _, _ = await _family(sqlite_db)
    seen: list[int] = []

    async def hook(app: App, report_id: int) -> None:
        seen.append(report_id)

    absence_flow.on_report_confirmed.append(hook)
    try:
        await _call(app, ScriptedChannel(MOM, [
            ("absence.main_menu", "1"), ("absence.child_option", "1"),
            ("absence.kind_menu", "1"), ("absence.reason_menu", "1"),
            ("absence.confirm_keys", "1"),
        ]))
    finally:
        absence_flow.on_report_confirmed.remove(hook)
    assert seen == [r.id for r in await _reports(app)]


async def test_day_heard_is_the_day_recorded_when_the_call_crosses_the_cutoff(
    sqlite_db: Database,
) -> None:
    app, (taro, _), _ = await _family(sqlite_db)
    clock = FakeClock(datetime(2026, 12, 3, 10, 59, 50, tzinfo=UTC), frozen=True)  # 19:59:50
    app.clock = clock

    class SlowCaller(FakeVoice):
        async def phrase(self, key: str, lang: str, **fmt: object) -> str:
            if key == "absence.confirm_keys":
                clock.set(datetime(2026, 12, 3, 11, 0, 30, tzinfo=UTC))  # 20:00:30 JST
            return await super().phrase(key, lang, **fmt)

    agi = ScriptedChannel(MOM, [
        ("absence.main_menu", "1"), ("absence.child_option", "1"), ("absence.kind_menu", "1"),
        ("absence.reason_menu", "1"), ("absence.confirm_keys", "1"),
    ])
    await AbsenceCall(agi, app, SlowCaller(), FakeHangup).run()
    [r] = await _reports(app)
    assert (r.child_id, r.day) == (taro, THU)
    assert any(s.startswith("absence.on_date:ja:date=12月3日") for s in agi.sounds())


async def test_confirmation_email_when_enabled(db: Database, smtp_server: Mailbox) -> None:
    """Through the real SMTP sink, in the guardian's language from the catalogs."""
    smtp_server.messages.clear()  # the sink is the session's; this test counts its mails
    app, _, mom = await _family(db, "en")
    app.settings = app.settings.replace(smtp_host="127.0.0.1", smtp_port=smtp_server.port)
    async with transaction(app.sessions) as s:
        g = await s.get(Guardian, mom)
        assert g is not None
        g.email, g.email_verified = "hanako@example.org", True
    script = [("absence.main_menu", "1"), ("absence.child_option", "1"),
              ("absence.kind_menu", "1"), ("absence.reason_menu", "1"),
              ("absence.confirm_keys", "1")]
    await _call(app, ScriptedChannel(MOM, script))
    await asyncio.sleep(0.3)
    assert smtp_server.to("hanako@example.org") == []  # off unless the settings turn it on
    app.settings = app.settings.replace(extra={"absence_confirmation_email": True})
    await _call(app, ScriptedChannel(MOM, script))
    mail = await smtp_server.wait_for("hanako@example.org")
    assert mail["Subject"] == "Report received"
    assert Mailbox.text(mail).rstrip() == (
        "We have received your report for 山田太郎: absence on Thursday, December 3.")
    async with transaction(app.sessions) as s:
        (await s.get_one(Guardian, mom)).language = "ja"
    late = [*script[:2], ("absence.kind_menu", "2"), ("absence.time_late", "1030"),
            *script[3:]]
    await _call(app, ScriptedChannel(MOM, late))
    mail = await smtp_server.wait_for("hanako@example.org", count=2)
    assert mail["Subject"] == "【欠席連絡】受け付けました"
    assert Mailbox.text(mail).startswith("山田太郎さんの12月3日")
    assert "遅刻のご連絡を受け付けました。" in Mailbox.text(mail)


async def test_call_cancelled_at_shutdown_writes_no_report(sqlite_db: Database) -> None:
    """The FastAGI server cancels calls still running after its grace period."""
    app, _, _ = await _family(sqlite_db)
    reached = asyncio.Event()

    class Stuck(ScriptedChannel):
        async def read_keys(self, sounds: list[tuple[str, str]], channel_lang: str,
                            max_digits: int, timeout_ms: int) -> str:
            if any(name.startswith("absence.confirm_keys") for _lang, name in sounds):
                reached.set()
                await asyncio.Event().wait()  # the caller never presses anything
            return await super().read_keys(sounds, channel_lang, max_digits, timeout_ms)

    agi = Stuck(MOM, [("absence.main_menu", "1"), ("absence.child_option", "1"),
                      ("absence.kind_menu", "1"), ("absence.reason_menu", "1")])
    task = asyncio.create_task(_call(app, agi))
    await asyncio.wait_for(reached.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _reports(app) == []
    assert await _log(app) == [("hung_up", MOM_E164)]
