"""A survey's deadline and its questions: the one place that says whether answers are taken.

Every channel (web page, email link, phone keypad) writes answers through
:func:`renraku.services.broadcast.record_answer`, which asks :func:`ensure_open` first, so
an answer after the deadline is refused everywhere alike and the tally stays final.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Survey, SurveyOption, SurveyQuestion, SurveyResponse
from renraku.rules import campaign as rules


class SurveyClosed(Exception):
    """The survey's deadline has passed: no answer, no change of its deadline."""

    def __init__(self, survey: Survey) -> None:
        super().__init__(f"survey {survey.id} closed at {survey.closes_at}")
        # Values, not the row: the transaction that raised this rolls back and expires it.
        self.survey_id = survey.id
        self.closes_at = survey.closes_at


class SurveyAnswered(Exception):
    """Families have answered already: changing the questions would mix two surveys."""


def is_closed(survey: Survey, now: datetime) -> bool:
    return survey.closes_at is not None and survey.closes_at <= now


async def ensure_open(session: AsyncSession, question_id: int, now: datetime) -> None:
    survey = await session.scalar(
        select(Survey).join(SurveyQuestion).where(SurveyQuestion.id == question_id))
    if survey is not None and is_closed(survey, now):
        raise SurveyClosed(survey)


async def answer_count(session: AsyncSession, survey_id: int) -> int:
    return int(await session.scalar(
        select(func.count()).select_from(SurveyResponse).join(SurveyQuestion)
        .where(SurveyQuestion.survey_id == survey_id)) or 0)


async def add_questions(session: AsyncSession, survey_id: int, questions: list[dict]) -> None:
    """Store checked questions (see :func:`renraku.rules.campaign.validate_survey`) in order."""
    for pos, q in enumerate(questions, 1):
        question = SurveyQuestion(survey_id=survey_id, position=pos, text=dict(q["text"]))
        session.add(question)
        await session.flush()
        for o in q["options"]:
            session.add(SurveyOption(question_id=question.id, digit=int(o["digit"]),
                                     label=dict(o["label"])))
    await session.flush()


async def replace_questions(session: AsyncSession, survey: Survey, questions: list[dict],
                            now: datetime) -> None:
    """New questions for a survey nobody has answered yet; refused once answers exist."""
    errors = rules.validate_survey(questions)
    if errors:
        raise ValueError("; ".join(errors))
    if is_closed(survey, now):
        raise SurveyClosed(survey)
    if await answer_count(session, survey.id):
        raise SurveyAnswered(survey.id)
    old = select(SurveyQuestion.id).where(SurveyQuestion.survey_id == survey.id)
    await session.execute(delete(SurveyOption).where(SurveyOption.question_id.in_(old)))
    await session.execute(delete(SurveyQuestion).where(SurveyQuestion.survey_id == survey.id))
    await session.flush()
    session.expire(survey, ["questions"])
    await add_questions(session, survey.id, questions)


def set_deadline(survey: Survey, closes_at: datetime | None, now: datetime) -> None:
    """Set, move or remove the deadline of a running survey; a closed one stays closed.

    ``closes_at`` before ``now`` closes it now (the teacher's "close now").
    """
    if is_closed(survey, now):
        raise SurveyClosed(survey)
    survey.closes_at = max(closes_at, now) if closes_at is not None else None
