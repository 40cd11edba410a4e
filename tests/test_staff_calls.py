"""Proxy registration end to end on the real phone line: a landline family the school
registered calls from its home number through Asterisk, and the report is recorded."""

from __future__ import annotations

import pytest

from models.db import transaction
from renraku.services import proxy
from tests.factories import make_child, make_class, make_school
from tests.test_absence_calls import (  # noqa: F401 - `line` is a fixture
    QUICK_ABSENCE,
    THU,
    Line,
    call_log,
    follow,
    line,
    reports,
)

pytestmark = pytest.mark.asterisk


async def test_proxy_registered_landline_calls_the_absence_line(line: Line) -> None:  # noqa: F811
    async with transaction(line.app.sessions) as s:
        school = await make_school(s, "さくら小学校")
        room = await make_class(s, school, "1年1組")
        kid = await make_child(s, school, "佐藤 花", "さとう はな", room)
        done = await proxy.proxy_register(
            s, proxy.ProxyForm(kid.id, "佐藤 ハル", "さとう はる", "祖母", "03-3000-0001"))
        kid_id, guardian_id = kid.id, done.guardian.id
    phone = line.phone("0330000001")
    await phone.call()
    await follow(phone, QUICK_ABSENCE)
    await phone.wait_end()
    [r] = await reports(line.app)
    assert (r.child_id, r.day, r.kind, r.channel, r.guardian_id) == (
        kid_id, THU, "absence", "phone", guardian_id)
    assert await call_log(line.app) == [("reported", "+81330000001")]
