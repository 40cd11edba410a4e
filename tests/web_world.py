"""A small school for the guardian-portal tests: two families, siblings, tokens, a survey."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from models import (
    Campaign,
    Notice,
    Survey,
    SurveyOption,
    SurveyQuestion,
)
from models.db import transaction
from models.enums import CampaignStatus
from renraku.services import events, registration
from renraku.services.passwords import hash_password
from tests.db_fixtures import Database
from tests.factories import make_child, make_class, make_guardian, make_school

NOW = datetime(2026, 12, 4, 0, 30, tzinfo=UTC)
PASSWORD = "family-pass-1"


@dataclass
class World:
    school: int
    class1: int
    class3: int
    taro: int  # 山田家 (Hanako primary, Ken second)
    hana: int  # Taro's sibling, another class
    jiro: int  # 佐藤家, another family
    newkid: int  # nobody registered yet
    hanako: int
    ken: int
    sato: int
    token_new: str
    token_taro: str
    token_hana: str
    token_jiro: str
    survey: int
    question: int


async def build_world(db: Database) -> World:
    async with transaction(db.sessions) as s:
        school = await make_school(s)
        c1 = await make_class(s, school, "1年1組", 1)
        c3 = await make_class(s, school, "3年2組", 3)
        taro = await make_child(s, school, "山田 太郎", "やまだ たろう", c1)
        hana = await make_child(s, school, "山田 花", "やまだ はな", c3)
        jiro = await make_child(s, school, "佐藤 次郎", "さとう じろう", c1)
        newkid = await make_child(s, school, "鈴木 三郎", "すずき さぶろう", c1)
        hanako = await make_guardian(s, "山田 花子", "090-1111-0001", children=(taro, hana),
                                     email="hanako@example.jp")
        ken = await make_guardian(s, "山田 健", "090-1111-0002", children=(taro,),
                                  email="ken@example.jp")
        sato = await make_guardian(s, "佐藤 良子", "090-2222-0001", children=(jiro,),
                                   email="sato@example.jp")
        for g in (hanako, ken, sato):
            g.password_hash = hash_password(PASSWORD)
        tokens = [await registration.issue(s, child.id, room.id, NOW)
                  for child, room in ((newkid, c1), (taro, c1), (hana, c3), (jiro, c1))]
        start = datetime(2026, 12, 11, 0, 0, tzinfo=UTC)
        await events.create_event(s, school.id, events.EventDraft(
            "運動会", start, start.replace(hour=6)), None, NOW)
        visit = await events.create_event(s, school.id, events.EventDraft(
            "授業参観", datetime(2026, 12, 9, 4, 0, tzinfo=UTC),
            datetime(2026, 12, 9, 5, 0, tzinfo=UTC), class_id=c1.id), None, NOW)
        await events.cancel_event(s, visit, None, NOW)
        s.add(Notice(school_id=school.id, scope="school", title="冬休みのお知らせ",
                     body="12月25日から冬休みです。", publish_at=NOW, created_at=NOW))
        s.add(Notice(school_id=school.id, scope="grade", grade=3, title="3年生 校外学習",
                     body="持ち物: 弁当", publish_at=NOW, created_at=NOW))
        survey = Survey(school_id=school.id, title="個人面談の希望", created_at=NOW)
        s.add(survey)
        await s.flush()
        q = SurveyQuestion(survey_id=survey.id, position=1,
                           text={"ja": "面談を希望しますか", "en": "Would you like a meeting?"})
        s.add(q)
        await s.flush()
        s.add_all([SurveyOption(question_id=q.id, digit=1, label={"ja": "はい", "en": "Yes"}),
                   SurveyOption(question_id=q.id, digit=2, label={"ja": "いいえ", "en": "No"})])
        s.add(Campaign(school_id=school.id, title="面談", message={"ja": "面談"},
                       target={"school": True}, survey_id=survey.id,
                       status=CampaignStatus.RUNNING, created_at=NOW))
        return World(school.id, c1.id, c3.id, taro.id, hana.id, jiro.id, newkid.id,
                     hanako.id, ken.id, sato.id, tokens[0].token, tokens[1].token,
                     tokens[2].token, tokens[3].token, survey.id, q.id)
