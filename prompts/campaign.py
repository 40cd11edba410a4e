"""Render a broadcast's spoken parts before the dialer starts, so no family hears silence.

The broadcast call (``ivr/broadcast_flow.py``) speaks the school's message, each survey
question and its options as TTS. Rendered on the first answered call, a long Japanese
message keeps that family waiting after they said hello (and four channels answering at
once all wait). :func:`prerender_campaign` renders exactly the texts the flow will ask for,
in every language its households use; call it when a campaign is scheduled or started.
A follow-up call of an unexplained absence gets its opening phrase with the child's name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import Campaign, CampaignHousehold, Child, FollowUp, School
from models.enums import CampaignStatus
from prompts import dynamic
from renraku.rules.campaign import pick_language
from renraku.services.broadcast import survey_questions
from renraku.settings import LANGUAGES, Settings


async def campaign_languages(session: AsyncSession, campaign: Campaign) -> list[str]:
    """The households' languages; before households are chosen, the school's."""
    langs = set(await session.scalars(
        select(CampaignHousehold.language).where(CampaignHousehold.campaign_id == campaign.id)
        .distinct()))
    if not langs:
        school = await session.get(School, campaign.school_id)
        langs = set(school.languages if school and school.languages else LANGUAGES)
    return [lang for lang in LANGUAGES if lang in langs]


async def prerender_campaign(
    settings: Settings,
    session: AsyncSession,
    campaign: Campaign | int,
    languages: Iterable[str] | None = None,
) -> list[str]:
    """Render what the broadcast call will say; returns the playable names (cached ones too).

    Mirrors the flow's choices: the message and each text in the family's language where it
    exists, else Japanese (``pick_language``); a recorded message needs no TTS body.
    """
    if isinstance(campaign, int):
        found = await session.get(Campaign, campaign)
        if found is None:
            raise LookupError(f"no campaign {campaign}")
        campaign = found
    school = await session.get(School, campaign.school_id)
    school_name = (school.reading or school.name) if school else ""
    langs = list(languages) if languages is not None else await campaign_languages(
        session, campaign)
    if campaign.flow == "followup":
        return await _prerender_followup(settings, session, campaign, school_name, langs)
    questions = await survey_questions(session, campaign.survey_id) if campaign.survey_id else []
    jobs = []
    for lang in langs:
        jobs.append(dynamic.say_phrase(settings, lang, "broadcast.message_from",
                                       school=school_name))
        if not campaign.recorded_prompt_key:
            text_lang = pick_language(campaign.message, lang)
            body = campaign.message.get(text_lang, "")
            if body.strip():
                jobs.append(dynamic.say_text(settings, text_lang, body))
        for q in questions:
            jobs.append(dynamic.say_phrase(settings, lang, "broadcast.question",
                                           number=q.position))
            qlang = pick_language(q.text, lang)
            if q.text.get(qlang, "").strip():
                jobs.append(dynamic.say_text(settings, qlang, q.text[qlang]))
            for o in q.options:
                label = o.label.get(pick_language(o.label, lang), "")
                for key in ("broadcast.option", "broadcast.you_chose"):
                    jobs.append(dynamic.say_phrase(settings, lang, key, digit=o.digit,
                                                   label=label))
    # Renders queue on the per-CPU limit in prompts.tts; identical texts render once.
    return list(await asyncio.gather(*jobs))


async def _prerender_followup(settings: Settings, session: AsyncSession, campaign: Campaign,
                              school_name: str, langs: list[str]) -> list[str]:
    """A follow-up call (ivr/followup_flow.py) says the school and the child's name first."""
    child = await session.scalar(
        select(Child).join(FollowUp, FollowUp.child_id == Child.id)
        .where(FollowUp.campaign_id == campaign.id))
    if child is None:
        return []
    return list(await asyncio.gather(*(
        dynamic.say_phrase(settings, lang, "followup.not_arrived", name=child.spoken_name,
                           school=school_name) for lang in langs)))


async def prerender_pending(settings: Settings, factory: async_sessionmaker[AsyncSession]) -> int:
    """Every scheduled, running or paused campaign (``renraku prompts build`` does this)."""
    async with factory() as s:
        campaigns = list(await s.scalars(select(Campaign).where(
            Campaign.status.in_([CampaignStatus.SCHEDULED, CampaignStatus.RUNNING,
                                 CampaignStatus.PAUSED]), Campaign.voice)))
        done = 0
        for campaign in campaigns:
            done += len(await prerender_campaign(settings, s, campaign))
    return done
