"""Pure rule: how a calendar change or an important notice reaches each household.

A household is the children who share guardians (siblings) with all their guardians. A
household where any guardian has an email address is told by email (the existing change
emails go to every guardian with an address). A household without any address but with a
registered phone gets one automated call — one, however many children it has there — on
the primary guardian's number (their first mobile, else their first number; the next
guardian's when the primary has none), spoken in the primary guardian's language. A
household with neither is counted, so staff see who the school must reach another way.

No I/O here: :mod:`renraku.services.family_reach` applies it (tests/test_rules_family_reach.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from renraku.rules.campaign import ChildInfo, GuardianInfo, preferred_phone


@dataclass(frozen=True)
class Household:
    child_ids: tuple[int, ...]
    guardian_ids: tuple[int, ...]


@dataclass(frozen=True)
class HouseholdCall:
    phone_e164: str
    language: str
    guardian_id: int  # whose number is called
    child_ids: tuple[int, ...]


@dataclass
class ReachPlan:
    emailed: list[Household] = field(default_factory=list)
    calls: list[HouseholdCall] = field(default_factory=list)
    unreachable: list[Household] = field(default_factory=list)


def households(children: Iterable[ChildInfo]) -> list[list[ChildInfo]]:
    """Children grouped by shared guardians (siblings are one household), by first child id."""
    kids = sorted(children, key=lambda c: c.child_id)
    parent: dict[int, int] = {}  # union-find over child ids

    def root(cid: int) -> int:
        while parent[cid] != cid:
            parent[cid] = parent[parent[cid]]
            cid = parent[cid]
        return cid

    first_child_of: dict[int, int] = {}  # guardian id → a child of theirs
    for child in kids:
        parent.setdefault(child.child_id, child.child_id)
        for g in child.guardians:
            other = first_child_of.setdefault(g.guardian_id, child.child_id)
            a, b = root(other), root(child.child_id)
            if a != b:
                parent[max(a, b)] = min(a, b)
    groups: dict[int, list[ChildInfo]] = {}
    for child in kids:
        groups.setdefault(root(child.child_id), []).append(child)
    return [groups[k] for k in sorted(groups)]


def _ordered_guardians(group: list[ChildInfo]) -> list[GuardianInfo]:
    """The household's guardians, the first child's primary first, each once."""
    seen: dict[int, GuardianInfo] = {}
    for child in group:
        for g in sorted(child.guardians, key=lambda g: (g.position, g.guardian_id)):
            seen.setdefault(g.guardian_id, g)
    return list(seen.values())


def plan_reach(children: Iterable[ChildInfo]) -> ReachPlan:
    """Who is emailed, who is called (once per household) and who cannot be reached."""
    plan = ReachPlan()
    for group in households(children):
        guardians = _ordered_guardians(group)
        household = Household(tuple(c.child_id for c in group),
                              tuple(g.guardian_id for g in guardians))
        if any(g.email for g in guardians):
            plan.emailed.append(household)
            continue
        called = next(((g, phone) for g in guardians
                       if (phone := preferred_phone(g.phones)) is not None), None)
        if called is None:
            plan.unreachable.append(household)
            continue
        primary = guardians[0]
        plan.calls.append(HouseholdCall(called[1], primary.language or "ja",
                                        called[0].guardian_id, household.child_ids))
    # Two households can share a number (a grandparent registered for two families): one call
    merged: dict[str, HouseholdCall] = {}
    for call in plan.calls:
        if call.phone_e164 in merged:
            prev = merged[call.phone_e164]
            merged[call.phone_e164] = HouseholdCall(
                prev.phone_e164, prev.language, prev.guardian_id,
                tuple(sorted(prev.child_ids + call.child_ids)))
        else:
            merged[call.phone_e164] = call
    plan.calls = list(merged.values())
    return plan
