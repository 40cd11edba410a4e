"""An emergency broadcast (`renraku emergency`): one action puts the same announcement on
the phone (a running voice campaign per school), in every guardian's mailbox that has an
address (sent at once, through a real SMTP server) and on every guardian's page of the
schools (a school-wide notice published now)."""

from __future__ import annotations

from argparse import Namespace

import pytest
from sqlalchemy import select

from models import Campaign, CampaignHousehold, EmailDelivery
from models.db import transaction
from models.enums import CampaignStatus
from renraku.commands import emergency as command
from renraku.services import emergency
from renraku.services.broadcast import CampaignError
from renraku.services.passwords import hash_password
from tests.db_fixtures import Database
from tests.factories import make_child, make_guardian, make_school
from tests.test_guardian_authz import Client
from tests.web_fixtures import PORTAL_NOW, Portal
from tests.web_world import PASSWORD, build_world

TITLE = "台風による臨時休校"
MESSAGE = "台風のため、本日は全校休校です。"
MESSAGE_EN = "All schools are closed today because of the typhoon."


async def test_one_action_calls_emails_and_posts_to_every_family(
        portal: Portal, sqlite_db: Database) -> None:
    world = await build_world(sqlite_db)
    async with transaction(sqlite_db.sessions) as s:
        other = await make_school(s, "第二小学校")
        kid = await make_child(s, other, "田中 一郎", "たなか いちろう")
        tanaka = await make_guardian(s, "田中 明美", "090-3333-0001", "en", (kid,),
                                     "akemi@example.jp")
        tanaka.password_hash = hash_password(PASSWORD)
        # A family with no email: the phone and the portal reach it.
        await make_guardian(s, "田中 父", "090-3333-0002", "ja", (kid,))
        other_id, other_kid = other.id, kid.id
    settings = portal.app.settings.replace(database_url=sqlite_db.url,
                                           fake_now=PORTAL_NOW.isoformat())
    assert await command.run(settings, Namespace(
        title=TITLE, message=MESSAGE, message_en=MESSAGE_EN, message_zh="", message_es="",
        school=[])) == 0
    # The phone: one running voice + email campaign per school, every household in it.
    async with sqlite_db.sessions() as s:
        campaigns = list(await s.scalars(select(Campaign).where(Campaign.title == TITLE)))
        households = {c.school_id: sorted(h.phone_e164 for h in await s.scalars(
            select(CampaignHousehold).where(CampaignHousehold.campaign_id == c.id)))
            for c in campaigns}
        mails = list(await s.scalars(select(EmailDelivery).where(
            EmailDelivery.campaign_id.in_([c.id for c in campaigns]))))
    assert {c.school_id for c in campaigns} == {world.school, other_id}
    assert all(c.status == CampaignStatus.RUNNING and c.voice and c.email for c in campaigns)
    assert all(c.message == {"ja": MESSAGE, "en": MESSAGE_EN} for c in campaigns)
    assert {(c.window_start, c.window_end) for c in campaigns} == {emergency.WINDOW}  # 6:00 in
    assert households[other_id] == ["+819033330001", "+819033330002"]
    assert len(households[world.school]) == 3
    # Email: sent by the command itself, one per address, every one delivered.
    addresses = {"hanako@example.jp", "ken@example.jp", "sato@example.jp", "akemi@example.jp"}
    assert {m.address for m in mails} == addresses
    assert all(m.status == "sent" for m in mails)
    for address in addresses:
        message = await portal.mailbox.wait_for(address)
        assert MESSAGE in portal.mailbox.text(message) or MESSAGE_EN in portal.mailbox.text(
            message)
    # The portal: the notice on the guardians' pages of both schools at once.
    for who, child, text in (("hanako@example.jp", world.taro, MESSAGE),
                             ("akemi@example.jp", other_kid, MESSAGE_EN)):
        family = Client(portal)
        try:
            await family.login(who)
            status, page = await family.get(f"/c/{child}")
        finally:
            await family.http.close()
        assert status == 200
        assert TITLE in page and text in page


async def test_one_school_only_and_a_message_is_required(sqlite_db: Database,
                                                         portal: Portal) -> None:
    world = await build_world(sqlite_db)
    async with transaction(sqlite_db.sessions) as s:
        other = (await make_school(s, "第三小学校")).id
    settings = portal.app.settings
    async with transaction(sqlite_db.sessions) as s:
        [done] = await emergency.declare(s, settings, title=TITLE, message={"ja": MESSAGE},
                                         now=PORTAL_NOW, school_ids=[world.school])
    assert done.school_id == world.school
    async with sqlite_db.sessions() as s:
        schools = set(await s.scalars(select(Campaign.school_id).where(Campaign.title == TITLE)))
    assert schools == {world.school}  # not the other school
    for message, ids in (({"en": MESSAGE_EN}, None), ({"ja": MESSAGE}, [other + 99])):
        with pytest.raises(CampaignError):
            async with transaction(sqlite_db.sessions) as s:
                await emergency.declare(s, settings, title=TITLE, message=message,
                                        now=PORTAL_NOW, school_ids=ids)
