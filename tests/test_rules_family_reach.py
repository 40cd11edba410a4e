"""Who hears of a calendar change or an important notice how: email, one call, or nobody."""

from __future__ import annotations

from renraku.rules.campaign import ChildInfo, GuardianInfo
from renraku.rules.family_reach import Household, HouseholdCall, households, plan_reach

M1 = ("+819011110001", "mobile")
M2 = ("+819011110002", "mobile")
LAND = ("+81311112222", "landline")
LAND2 = ("+81311113333", "landline")


def g(gid: int, pos: int, phones: tuple = (), lang: str = "ja",
      email: str | None = None) -> GuardianInfo:
    return GuardianInfo(gid, pos, lang, tuple(phones), email)


def test_household_with_any_email_is_emailed_and_not_called() -> None:
    kid = ChildInfo(1, (g(10, 1, (M1,)), g(11, 2, (M2,), email="dad@example.jp")))
    plan = plan_reach([kid])
    assert plan.emailed == [Household((1,), (10, 11))]
    assert plan.calls == [] and plan.unreachable == []


def test_phone_only_household_is_called_once_on_the_primary_number() -> None:
    # Mother and father have their own mobiles: still one call, to the primary guardian
    kid = ChildInfo(1, (g(11, 2, (M2,), "zh"), g(10, 1, (LAND, M1), "en")))
    assert plan_reach([kid]).calls == [HouseholdCall(M1[0], "en", 10, (1,))]


def test_siblings_are_one_household_and_one_call() -> None:
    mother, grandma = g(10, 1, (LAND,), "es"), g(12, 2, (LAND2,))
    big, small = ChildInfo(1, (mother,)), ChildInfo(2, (grandma, g(10, 1, (LAND,), "es")))
    assert [[c.child_id for c in h] for h in households([small, big])] == [[1, 2]]
    plan = plan_reach([big, small])
    assert plan.calls == [HouseholdCall(LAND[0], "es", 10, (1, 2))]


def test_siblings_where_one_guardian_has_email_are_all_emailed() -> None:
    # The step-father with an address is the second child's guardian only: the household
    # shares the mother, so the whole household reads the email
    mother = g(10, 1, (LAND,))
    plan = plan_reach([ChildInfo(1, (mother,)),
                       ChildInfo(2, (mother, g(13, 2, (), email="s@example.jp")))])
    assert plan.calls == [] and plan.emailed == [Household((1, 2), (10, 13))]


def test_primary_without_phone_next_guardian_called_in_the_primary_language() -> None:
    kid = ChildInfo(1, (g(10, 1, (), "zh"), g(11, 2, (LAND,), "ja")))
    assert plan_reach([kid]).calls == [HouseholdCall(LAND[0], "zh", 11, (1,))]


def test_no_email_no_phone_is_unreachable() -> None:
    plan = plan_reach([ChildInfo(1, (g(10, 1),)), ChildInfo(2, ())])
    assert plan.calls == [] and plan.emailed == []
    assert plan.unreachable == [Household((1,), (10,)), Household((2,), ())]


def test_separate_families_sharing_one_number_get_one_call() -> None:
    a = ChildInfo(1, (g(10, 1, (LAND,), "en"),))
    b = ChildInfo(5, (g(20, 1, (LAND,), "ja"),))
    assert plan_reach([b, a]).calls == [HouseholdCall(LAND[0], "en", 10, (1, 5))]


def test_separate_households_each_called() -> None:
    plan = plan_reach([ChildInfo(1, (g(10, 1, (M1,)),)), ChildInfo(2, (g(20, 1, (M2,)),))])
    assert [c.phone_e164 for c in plan.calls] == [M1[0], M2[0]]
