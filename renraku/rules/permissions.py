"""Who on the staff may see or change what: pure rules, checked on the server for every page.

A teacher sees and acts on the classes they are assigned to (StaffClass); a school admin
acts on the whole of their own school, including staff accounts and phone prompts. Nobody
acts across schools. Handlers build a ``StaffScope`` once per request from the logged-in
staff row and ask these functions; a ``False`` becomes HTTP 403 (or 404 to hide existence).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from models.enums import StaffRole


class PermissionDenied(Exception):
    """The staff member may not do this; the web layer answers 403."""


@dataclass(frozen=True)
class StaffScope:
    staff_id: int
    school_id: int
    role: str
    class_ids: frozenset[int] = frozenset()
    active: bool = True

    @property
    def is_admin(self) -> bool:
        return self.active and self.role == StaffRole.ADMIN

    @property
    def is_principal(self) -> bool:
        return self.active and self.role == StaffRole.PRINCIPAL


def _same_school(scope: StaffScope, school_id: int) -> bool:
    return scope.active and scope.school_id == school_id


def can_view_class(scope: StaffScope, school_id: int, class_id: int) -> bool:
    """Register, exports, guardians and QR sheets of one class."""
    if not _same_school(scope, school_id):
        return False
    return scope.is_admin or class_id in scope.class_ids


def visible_classes(scope: StaffScope, classes: Iterable[tuple[int, int]]) -> list[int]:
    """The ids among (class_id, school_id) pairs that this person may open, in input order."""
    return [cid for cid, sid in classes if can_view_class(scope, sid, cid)]


def can_view_child(scope: StaffScope, school_id: int, child_class_ids: Iterable[int]) -> bool:
    """A child is visible through any class of theirs the person may open."""
    return any(can_view_class(scope, school_id, cid) for cid in child_class_ids)


def can_edit_event(scope: StaffScope, school_id: int, class_id: int | None) -> bool:
    """School-wide events belong to the admin; a class event also to that class's teacher."""
    if not _same_school(scope, school_id):
        return False
    if class_id is None:
        return scope.is_admin
    return can_view_class(scope, school_id, class_id)


def can_post_notice(
    scope: StaffScope,
    school_id: int,
    target: str,
    class_id: int | None = None,
) -> bool:
    """Notices to the school or a grade are the admin's; a class notice also its teacher's."""
    if not _same_school(scope, school_id):
        return False
    if target == "class" and class_id is not None:
        return can_view_class(scope, school_id, class_id)
    return scope.is_admin


def can_manage_staff(scope: StaffScope, school_id: int) -> bool:
    return _same_school(scope, school_id) and scope.is_admin


def can_manage_school(scope: StaffScope, school_id: int) -> bool:
    """The school's own settings (name, reading, cutoff, phone line...): its admins only."""
    return _same_school(scope, school_id) and scope.is_admin


def can_manage_prompts(scope: StaffScope, school_id: int) -> bool:
    return _same_school(scope, school_id) and scope.is_admin


def can_view_school_summary(scope: StaffScope, school_id: int) -> bool:
    """The school-wide morning summary, its alerts and follow-up button: admin and principal."""
    return _same_school(scope, school_id) and (scope.is_admin or scope.is_principal)


def can_view_health(scope: StaffScope, school_id: int) -> bool:
    """The nurse's dashboard (every class's illness reports): nurse, admin, principal."""
    return _same_school(scope, school_id) and (
        scope.is_admin or scope.is_principal or scope.role == StaffRole.NURSE)


def can_set_closure_threshold(scope: StaffScope, school_id: int) -> bool:
    return _same_school(scope, school_id) and (scope.is_admin or scope.role == StaffRole.NURSE)


def can_view_child_notes(scope: StaffScope, school_id: int,
                         child_class_ids: Iterable[int]) -> bool:
    """Notes between staff (引継ぎ): the child's teachers, admin, principal and nurse."""
    if not _same_school(scope, school_id):
        return False
    return (scope.is_principal or scope.role == StaffRole.NURSE
            or can_view_child(scope, school_id, child_class_ids))


def require(allowed: bool, what: str = "") -> None:
    """Raise PermissionDenied unless ``allowed``; keeps call sites one line long."""
    if not allowed:
        raise PermissionDenied(what)


def can_manage_terms(scope: StaffScope, school_id: int) -> bool:
    return _same_school(scope, school_id) and scope.is_admin


def can_change_calendar(scope: StaffScope, school_id: int, class_id: int | None) -> bool:
    """School-wide and grade closures and extra school days are the admin's; a class
    closure (学級閉鎖) also its teacher's."""
    return can_edit_event(scope, school_id, class_id)
