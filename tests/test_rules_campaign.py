"""The broadcast's pure rules: households, calling window, outcomes, retries, pacing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from models.enums import AttemptStatus as S
from renraku.rules import campaign as r

JST = "Asia/Tokyo"
NOW = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)


def g(gid: int, pos: int, phones: tuple = (), lang: str = "ja", email: str | None = None):
    return r.GuardianInfo(gid, pos, lang, tuple(phones), email)


M1 = ("+819011110001", "mobile")
M2 = ("+819011110002", "mobile")
LAND = ("+81311112222", "landline")


def test_one_call_per_number_shared_landline_called_once() -> None:
    # Mother and father share only the home landline: one household, one call
    child = r.ChildInfo(1, (g(10, 1, (LAND,)), g(11, 2, (LAND,))))
    plans = r.build_households([child])
    assert [p.phone_e164 for p in plans] == [LAND[0]]
    assert plans[0].guardian_ids == [10, 11]
    assert plans[0].survey_child_ids == [1]


def test_mobile_preferred_and_survey_only_for_primary() -> None:
    child = r.ChildInfo(1, (g(10, 1, (LAND, M1), "en"), g(11, 2, (M2,), "zh")))
    plans = {p.phone_e164: p for p in r.build_households([child])}
    assert set(plans) == {M1[0], M2[0]}
    assert plans[M1[0]].survey and plans[M1[0]].language == "en"
    assert not plans[M2[0]].survey and plans[M2[0]].language == "zh"


def test_siblings_one_household_answers_for_both() -> None:
    mum = g(10, 1, (M1,), "es")
    plans = r.build_households([r.ChildInfo(2, (mum,)), r.ChildInfo(1, (mum,))])
    assert len(plans) == 1
    assert plans[0].child_ids == [1, 2] and plans[0].survey_child_ids == [1, 2]


def test_primary_language_wins_on_shared_line() -> None:
    # The grandmother (2nd guardian of child 1) is first seen, the primary of child 2 speaks en
    gran = g(20, 2, (LAND,), "ja")
    dad = g(21, 1, (LAND,), "en")
    plans = r.build_households([r.ChildInfo(1, (g(22, 1, (M1,)), gran)), r.ChildInfo(2, (dad,))])
    land = next(p for p in plans if p.phone_e164 == LAND[0])
    assert land.language == "en" and land.guardian_id == 21
    assert land.survey_child_ids == [2]


def test_guardian_without_phone_skipped_emails_per_guardian() -> None:
    child = r.ChildInfo(1, (g(10, 1, (), email="a@x.jp"), g(11, 2, (M1,), email="b@x.jp")))
    assert [p.phone_e164 for p in r.build_households([child])] == [M1[0]]
    emails = r.build_emails([child])
    assert [(e.guardian_id, e.survey_child_ids) for e in emails] == [(10, [1]), (11, [])]


def test_pick_language() -> None:
    assert r.pick_language({"ja": "こんにちは", "en": "Hello"}, "en") == "en"
    assert r.pick_language({"ja": "こんにちは", "en": ""}, "en") == "ja"
    assert r.pick_language({"ja": "こんにちは"}, "zh") == "ja"


@pytest.mark.parametrize(
    ("local", "inside"),
    [("07:59", False), ("08:00", True), ("19:59", True), ("20:00", False), ("23:30", False)],
)
def test_window(local: str, inside: bool) -> None:
    hh, mm = map(int, local.split(":"))
    # JST = UTC+9
    now = datetime(2026, 12, 4, hh, mm, tzinfo=UTC) - timedelta(hours=9)
    assert r.in_window(now, JST, "08:00", "20:00") is inside


def test_next_window_start() -> None:
    evening = datetime(2026, 12, 4, 20, 0, tzinfo=UTC) - timedelta(hours=9)
    opens = r.next_window_start(evening, JST, "08:00", "20:00")
    assert opens == datetime(2026, 12, 5, 8, 0, tzinfo=UTC) - timedelta(hours=9)
    early = datetime(2026, 12, 5, 6, 0, tzinfo=UTC) - timedelta(hours=9)
    assert r.next_window_start(early, JST, "08:00", "20:00") == opens
    inside = opens + timedelta(hours=1)
    assert r.next_window_start(inside, JST, "08:00", "20:00") == inside


def test_outcomes() -> None:
    assert r.outcome_from_reason(5) == S.BUSY
    assert r.outcome_from_reason(3) == S.NO_ANSWER
    assert r.outcome_from_reason(8) == S.FAILED
    assert r.outcome_from_reason(1) == S.FAILED
    assert r.outcome_from_cause(17) == S.BUSY
    assert r.outcome_from_cause(19) == S.NO_ANSWER
    assert r.outcome_from_cause(21) == S.FAILED
    assert r.answered_outcome(amd_machine=True, message_completed=True) == S.LEFT_MESSAGE
    assert r.answered_outcome(amd_machine=False, message_completed=True) == S.COMPLETED
    assert r.answered_outcome(amd_machine=False, message_completed=False) == S.HUNG_UP


def test_retry_rules() -> None:
    delay = timedelta(minutes=5)
    d = r.after_attempt(S.BUSY, 1, NOW, max_attempts=3, retry_delay=delay)
    assert d == r.RetryDecision(S.BUSY, NOW + delay, False)
    d = r.after_attempt(S.NO_ANSWER, 3, NOW, max_attempts=3, retry_delay=delay)
    assert d == r.RetryDecision(S.NO_ANSWER, None, True)
    for final in (S.COMPLETED, S.LEFT_MESSAGE, S.HUNG_UP):
        assert r.after_attempt(final, 1, NOW, max_attempts=3, retry_delay=delay).final
    with pytest.raises(ValueError):
        r.after_attempt(S.DIALING, 1, NOW, max_attempts=3, retry_delay=delay)
    assert r.display_state("busy", NOW) == "retrying"
    assert r.display_state("busy", None) == "busy"
    assert r.household_final("no_answer", None) and not r.household_final("no_answer", NOW)


def test_pacer_spaces_originates() -> None:
    p = r.Pacer(2.0)
    assert p.wait_for(100.0) == 0.0
    p.mark(100.0)
    assert p.wait_for(100.1) == pytest.approx(0.4)
    assert p.wait_for(100.6) == 0.0
    assert r.free_channels(4, 5) == 0 and r.free_channels(4, 1) == 3


def test_estimate() -> None:
    assert r.estimate_duration_s(0, max_channels=4, originates_per_second=1) == 0
    # 30 calls on 10 channels: 3 waves of 45 s
    assert r.estimate_duration_s(30, max_channels=10, originates_per_second=100) == 135
    # pacing-bound: 100 calls at 1/s on 1000 channels
    assert r.estimate_duration_s(100, max_channels=1000, originates_per_second=1) == 145


def test_validate_survey() -> None:
    opt = [{"digit": 1, "label": {"ja": "はい"}}, {"digit": 2, "label": {"ja": "いいえ"}}]
    good = {"text": {"ja": "参加しますか"}, "options": opt}
    assert r.validate_survey([good]) == []
    assert r.validate_survey([good] * 6)
    assert r.validate_survey([{"text": {"ja": "q"}, "options": [*opt, {"digit": 0,
                                                                       "label": {"ja": "x"}}]}])
    assert r.validate_survey([{"text": {"ja": "q"}, "options": [opt[0], opt[0]]}])
    assert r.validate_survey([])


def test_a_call_cut_by_an_asterisk_restart_is_retried_unless_the_message_got_through() -> None:
    assert r.cut_outcome(amd_machine=False, message_completed=False) == S.FAILED
    assert r.cut_outcome(amd_machine=True, message_completed=False) == S.FAILED
    assert r.cut_outcome(amd_machine=False, message_completed=True) == S.COMPLETED
    assert r.cut_outcome(amd_machine=True, message_completed=True) == S.LEFT_MESSAGE
    assert S.FAILED in r.RETRYABLE_STATES
