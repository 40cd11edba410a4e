"""School setup on SQLite and PostgreSQL: creating a school and its staff, set-password
links, the recording line's phone and PIN, the school's calling window, the welcome's name.
The settings' checks themselves are pure (renraku.rules.school_settings) and tested first."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import select

from ivr.absence_flow import AbsenceCall
from ivr.dialer import Dialer, DialerConfig
from models import Campaign, School, Staff, VerificationCode
from models.db import transaction
from renraku.app import App
from renraku.clock import FakeClock
from renraku.rules import campaign as dr
from renraku.rules.school_settings import InvalidSchoolSettings, parse_school_settings
from renraku.services import broadcast as bc
from renraku.services import staff as staff_svc
from renraku.services import verification
from renraku.services.passwords import verify_password
from renraku.services.schools import apply_settings, calling_window, create_school
from renraku.settings import Settings
from tests.absence_fakes import FakeHangup, FakeVoice, ScriptedChannel
from tests.db_fixtures import Database
from tests.factories import make_child, make_guardian
from tests.test_dialer_fake_ami import FakeAmi, _app, _campaign, _run_until_done

NOW = datetime(2026, 12, 4, 0, 30, tzinfo=UTC)
SETTINGS = Settings(secret_key="test-secret", public_url="https://renraku.example.jp")


def test_settings_defaults_and_normalised_values() -> None:
    plain = parse_school_settings(name="  さくら小学校 ")
    assert (plain.name, plain.timezone, plain.phone_cutoff, plain.languages,
            plain.school_weekdays, plain.call_window, plain.absence_line_e164) == (
        "さくら小学校", "Asia/Tokyo", time(20, 0), ("ja", "en", "zh", "es"), (1, 2, 3, 4, 5),
        None, None)
    full = parse_school_settings(
        name="x", reading="えっくす", timezone="America/Sao_Paulo", cutoff="7:30",
        languages=["es", "ja"], absence_line="0120-123-456", window_start="9:00",
        window_end="18:30", weekdays=["6", "1", "2"])
    assert (full.phone_cutoff, full.languages, full.call_window, full.school_weekdays,
            full.absence_line_e164) == (time(7, 30), ("ja", "es"), ("09:00", "18:30"),
                                        (1, 2, 6), "+81120123456")


@pytest.mark.parametrize(("field", "kwargs"), [
    ("name", {"name": " "}),
    ("reading", {"reading": "あ" * 201}),
    ("timezone", {"timezone": "Mars/Olympus"}),
    ("timezone", {"timezone": ""}),
    ("cutoff", {"cutoff": "25:00"}),
    ("cutoff", {"cutoff": "8pm"}),
    ("languages", {"languages": []}),
    ("languages", {"languages": ["ja", "fr"]}),
    ("absence_line", {"absence_line": "12345"}),
    ("call_window", {"window_start": "20:00", "window_end": "08:00"}),
    ("call_window", {"window_start": "08:00"}),
    ("weekdays", {"weekdays": []}),
    ("weekdays", {"weekdays": ["8"]}),
])
def test_each_bad_field_is_named(field: str, kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidSchoolSettings) as caught:
        parse_school_settings(**{"name": "x", **kwargs})  # type: ignore[arg-type]
    assert list(caught.value.errors) == [field]


def test_every_bad_field_at_once() -> None:
    with pytest.raises(InvalidSchoolSettings) as caught:
        parse_school_settings(name="", timezone="Nowhere", cutoff="", weekdays=[])
    assert set(caught.value.errors) == {"name", "timezone", "cutoff", "weekdays"}


def test_school_window_narrows_a_campaign_window() -> None:
    assert dr.narrowed(("08:00", "20:00"), ("09:30", "17:00")) == ("09:30", "17:00")
    assert dr.narrowed(("10:00", "12:00"), ("09:30", "17:00")) == ("10:00", "12:00")
    start, end = dr.narrowed(("18:00", "20:00"), ("08:00", "17:00"))  # no overlap: no calls
    assert not dr.in_window(datetime(2026, 12, 4, 9, 30, tzinfo=UTC), "UTC", start, end)


async def test_create_school_and_change_its_settings(db: Database) -> None:
    async with transaction(db.sessions) as s:
        school = await create_school(s, parse_school_settings(
            name="さくら小学校", reading="さくらしょうがっこう", cutoff="19:00"))
        school_id = school.id
    async with transaction(db.sessions) as s:
        school = await s.get_one(School, school_id)
        assert (school.spoken_name, school.phone_cutoff, school.languages) == (
            "さくらしょうがっこう", time(19, 0), ["ja", "en", "zh", "es"])
        assert calling_window(school, SETTINGS) == ("08:00", "20:00")  # the global default
        apply_settings(school, parse_school_settings(
            name="さくら市立さくら小学校", reading="", timezone="Asia/Tokyo", cutoff="20:30",
            languages=["ja", "zh"], absence_line="03-3000-9999", window_start="09:00",
            window_end="17:00", weekdays=[1, 2, 3, 4, 5, 6]))
    async with db.sessions() as s:
        school = await s.get_one(School, school_id)
        assert (school.spoken_name, school.phone_cutoff, school.languages,
                school.absence_line_e164, school.school_weekdays) == (
            "さくら市立さくら小学校", time(20, 30), ["ja", "zh"], "+81330009999",
            [1, 2, 3, 4, 5, 6])
        assert calling_window(school, SETTINGS) == ("09:00", "17:00")


async def test_campaigns_follow_the_school_window(db: Database) -> None:
    async with transaction(db.sessions) as s:
        school = await create_school(s, parse_school_settings(
            name="x", window_start="09:00", window_end="17:00"))
        default = await bc.create_campaign(s, SETTINGS, school_id=school.id, title="t",
                                           target={"kind": "school"}, now=NOW,
                                           message={"ja": "お知らせ"})
        wide = await bc.create_campaign(s, SETTINGS, school_id=school.id, title="t",
                                        target={"kind": "school"}, now=NOW,
                                        message={"ja": "お知らせ"}, window_start="07:00",
                                        window_end="21:00")
        assert (default.window_start, default.window_end) == ("09:00", "17:00")
        hours = await bc.calling_hours(s, SETTINGS, wide)
        assert (hours.tz, hours.start, hours.end) == ("Asia/Tokyo", "09:00", "17:00")
        # The school narrows its window later: campaigns already made obey it too.
        school.call_window_start = "10:00"
        hours = await bc.calling_hours(s, SETTINGS, await s.get_one(Campaign, default.id))
        assert (hours.start, hours.end) == ("10:00", "17:00")


async def test_staff_without_password_sets_it_once_through_the_link(db: Database) -> None:
    async with transaction(db.sessions) as s:
        school = await create_school(s, parse_school_settings(name="x"))
        admin = await staff_svc.create_staff(s, school.id, name="校長", email="Head@X.jp",
                                             role="admin", password=None, class_ids=[])
        first = await staff_svc.password_link(s, admin, SETTINGS, NOW)
        link = await staff_svc.password_link(s, admin, SETTINGS, NOW)  # retires the first
        assert admin.email == "head@x.jp" and not verify_password(admin.password_hash, "")
    assert link.startswith("https://renraku.example.jp/password/reset/")
    code_id, code = link.rsplit("/", 2)[1:]
    old_id, old_code = first.rsplit("/", 2)[1:]
    async with transaction(db.sessions) as s:
        assert await verification.check_by_id(s, int(old_id), verification.LINKS, old_code,
                                              NOW, "test-secret") is None
        row = await verification.check_by_id(s, int(code_id), verification.LINKS, code,
                                             NOW + timedelta(hours=23), "test-secret")
        assert row is not None and row.staff_id == admin.id and row.guardian_id is None
    async with transaction(db.sessions) as s:  # single use
        assert await verification.check_by_id(s, int(code_id), verification.LINKS, code,
                                              NOW + timedelta(hours=23), "test-secret") is None
        late = await staff_svc.password_link(s, admin, SETTINGS, NOW)
    late_id, late_code = late.rsplit("/", 2)[1:]
    async with transaction(db.sessions) as s:  # expired after 24 hours
        assert await verification.check_by_id(s, int(late_id), verification.LINKS, late_code,
                                              NOW + timedelta(hours=24, seconds=1),
                                              "test-secret") is None
    async with db.sessions() as s:
        owners = (await s.execute(select(VerificationCode.staff_id,
                                         VerificationCode.purpose))).all()
        assert set(owners) == {(admin.id, "set_password")}


@pytest.mark.parametrize(("kwargs", "code"), [
    ({"email": "head@x.jp"}, "email_taken"),
    ({"email": "HEAD@x.jp"}, "email_taken"),
    ({"school": 999}, "school"),
    ({"role": "janitor"}, "role"),
    ({"email": "no-at-sign"}, "email"),
    ({"name": " "}, "name"),
    ({"password": "short"}, "password_short"),
    ({"password": "password123"}, "password_common"),
])
async def test_staff_creation_errors(db: Database, kwargs: dict[str, object],
                                     code: str) -> None:
    async with transaction(db.sessions) as s:
        school = await create_school(s, parse_school_settings(name="x"))
        await staff_svc.create_staff(s, school.id, name="校長", email="head@x.jp",
                                     role="admin", password=None, class_ids=[])
    args = {"name": "森", "email": "mori@x.jp", "role": "nurse", "password": None,
            "school": school.id, **kwargs}
    school_id = args.pop("school")
    with pytest.raises(staff_svc.StaffError) as caught:
        async with transaction(db.sessions) as s:
            await staff_svc.create_staff(s, school_id, class_ids=[], **args)  # type: ignore[arg-type]
    assert str(caught.value) == code


async def test_recording_line_phone_and_pin(db: Database) -> None:
    async with transaction(db.sessions) as s:
        school = await create_school(s, parse_school_settings(name="x"))
        a = await staff_svc.create_staff(s, school.id, name="A", email="a@x.jp",
                                         role="admin", password=None, class_ids=[])
        b = await staff_svc.create_staff(s, school.id, name="B", email="b@x.jp",
                                         role="principal", password=None, class_ids=[])
        for phone, pin, code in [("090-9000-0001", "", "pin"), ("090-9000-0001", "12", "pin"),
                                 ("090-9000-0001", "12ab", "pin"), ("12", "1234", "phone")]:
            with pytest.raises(staff_svc.StaffError, match=code):
                await staff_svc.set_phone_and_pin(s, a, phone, pin)
        await staff_svc.set_phone_and_pin(s, a, "090-9000-0001", "2468")
        with pytest.raises(staff_svc.StaffError, match="phone_taken"):
            await staff_svc.set_phone_and_pin(s, b, "+81 90 9000 0001", "1357")
        await staff_svc.set_phone_and_pin(s, a, "090-9000-0002", "")  # PIN kept
        assert a.phone_e164 == "+819090000002" and verify_password(a.pin_hash, "2468")
        await staff_svc.set_role(s, b, "nurse")
        with pytest.raises(staff_svc.StaffError, match="role"):
            await staff_svc.set_role(s, b, "janitor")
    async with db.sessions() as s:
        b_row = await s.get_one(Staff, b.id)
        assert b_row.role == "nurse"
    async with transaction(db.sessions) as s:
        a_row = await s.get_one(Staff, a.id)
        await staff_svc.set_phone_and_pin(s, a_row, "", "")  # off the recording line
        assert (a_row.phone_e164, a_row.pin_hash) == (None, None)


async def test_welcome_names_the_school_by_its_reading(db: Database) -> None:
    app = App(Settings(), FakeClock(NOW, frozen=True), db.engine, db.sessions)
    async with transaction(db.sessions) as s:
        one = await create_school(s, parse_school_settings(
            name="さくら市立さくら小学校", reading="さくらしりつさくらしょうがっこう"))
        other = await create_school(s, parse_school_settings(name="ひまわり中学校"))
        kid = await make_child(s, one)
        await make_guardian(s, "母", "090-1111-0001", children=(kid,))
        sibling = await make_child(s, other, "山田次郎", "やまだじろう")
        await make_guardian(s, "父", "090-1111-0002", children=(kid, sibling))
    channel = ScriptedChannel("09011110001", [("absence.main_menu", "0")])
    await AbsenceCall(channel, app, FakeVoice(), FakeHangup).run()
    assert channel.sounds()[0] == (
        "absence.welcome_school:ja:school=さくらしりつさくらしょうがっこう")
    # Children at two schools: the welcome names none of them.
    channel = ScriptedChannel("09011110002", [("absence.main_menu", "0")])
    await AbsenceCall(channel, app, FakeVoice(), FakeHangup).run()
    assert channel.sounds()[0] == "absence.welcome:ja"


async def test_the_dialer_keeps_to_the_school_window(sqlite_db: Database) -> None:
    """A campaign made for 08:00–20:00 waits while its school's own window is closed (the
    school opens at 10:00; it is 09:xx there), and calls once the school's window opens."""
    app = _app(sqlite_db)
    scripts = {"819010000101": ["press"]}
    cid = await _campaign(app, scripts)
    async with transaction(app.sessions) as s:
        school = await s.scalar(select(School))
        assert school is not None
        school.call_window_start, school.call_window_end = "10:00", "20:00"
    ami = FakeAmi(app, scripts)
    dialer = Dialer(app, ami, DialerConfig(answer_grace_s=0.1))
    with pytest.raises(TimeoutError):
        await _run_until_done(dialer, app, cid, limit=1.5)
    assert ami.calls == {}
    async with transaction(app.sessions) as s:
        school = await s.scalar(select(School))
        assert school is not None
        school.call_window_start = "09:00"
    await _run_until_done(dialer, app, cid)
    assert ami.calls == {"819010000101": 1}
