"""The nurse's (養護教諭) view as a pure computation: per class and day, absences by reason
and symptom, the share of the class absent, and a class-closure flag at a threshold.

Only absences count (a late arrival after a doctor's visit is no sick day). The share is
every absence that day over the class's children; the flag is raised when it reaches the
school's threshold (e.g. 20 %), the usual trigger for considering 学級閉鎖.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

from models.enums import SYMPTOM_REASONS, ReportKind, ReportReason, Symptom

NOT_GIVEN = "not_given"
SYMPTOM_KEYS = (*(s.value for s in Symptom), NOT_GIVEN)


@dataclass(frozen=True)
class HealthFact:
    class_id: int
    day: date
    kind: str
    reason: str
    symptom: str | None


@dataclass
class DayHealth:
    day: date
    children: int
    absent: int = 0
    illness: int = 0
    suspension: int = 0  # infectious disease (出席停止)
    symptoms: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SYMPTOM_KEYS, 0))
    flagged: bool = False

    @property
    def share_pct(self) -> float:
        return 100.0 * self.absent / self.children if self.children else 0.0


@dataclass
class ClassHealth:
    class_id: int
    name: str
    children: int
    days: list[DayHealth]

    @property
    def flagged(self) -> bool:
        return any(d.flagged for d in self.days)


def build(
    classes: Sequence[tuple[int, str, int]],
    facts: Iterable[HealthFact],
    days: Sequence[date],
    threshold_pct: int,
) -> list[ClassHealth]:
    """``classes``: (id, name, number of children); ``days``: the columns, oldest first."""
    out = {cid: ClassHealth(cid, name, size, [DayHealth(d, size) for d in days])
           for cid, name, size in classes}
    index = {d: i for i, d in enumerate(days)}
    for fact in facts:
        room, i = out.get(fact.class_id), index.get(fact.day)
        if room is None or i is None or fact.kind != ReportKind.ABSENCE:
            continue
        cell = room.days[i]
        cell.absent += 1
        if fact.reason == ReportReason.ILLNESS:
            cell.illness += 1
        elif fact.reason == ReportReason.SUSPENSION:
            cell.suspension += 1
        if fact.reason in SYMPTOM_REASONS:
            cell.symptoms[fact.symptom or NOT_GIVEN] += 1
    for room in out.values():
        for cell in room.days:
            cell.flagged = cell.children > 0 and cell.share_pct >= threshold_pct
    return [out[cid] for cid, _name, _size in classes]


def csv_safe(value: object) -> str:
    """A cell a spreadsheet will not run as a formula (=, +, -, @, tab, CR first)."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
