"""Staff permission rules: teachers their own classes, admins their own school, nobody across."""

from __future__ import annotations

from renraku.rules.permissions import (
    PermissionDenied,
    StaffScope,
    can_edit_event,
    can_manage_prompts,
    can_manage_staff,
    can_post_notice,
    can_view_child,
    can_view_class,
    require,
    visible_classes,
)

TEACHER = StaffScope(staff_id=2, school_id=1, role="teacher", class_ids=frozenset({10}))
ADMIN = StaffScope(staff_id=1, school_id=1, role="admin")
OTHER_ADMIN = StaffScope(staff_id=3, school_id=2, role="admin")
RETIRED = StaffScope(staff_id=4, school_id=1, role="admin", active=False)


def test_class_scope() -> None:
    assert can_view_class(TEACHER, 1, 10)
    assert not can_view_class(TEACHER, 1, 11)
    assert not can_view_class(TEACHER, 2, 10)  # a class id of another school
    assert can_view_class(ADMIN, 1, 11)
    assert not can_view_class(OTHER_ADMIN, 1, 11)
    assert not can_view_class(RETIRED, 1, 11)
    assert visible_classes(TEACHER, [(10, 1), (11, 1), (20, 2)]) == [10]
    assert visible_classes(ADMIN, [(10, 1), (11, 1), (20, 2)]) == [10, 11]
    assert can_view_child(TEACHER, 1, [11, 10])
    assert not can_view_child(TEACHER, 1, [11])


def test_events_notices_and_admin_areas() -> None:
    assert can_edit_event(TEACHER, 1, 10)
    assert not can_edit_event(TEACHER, 1, None)  # school-wide
    assert not can_edit_event(TEACHER, 1, 11)
    assert can_edit_event(ADMIN, 1, None) and can_edit_event(ADMIN, 1, 11)
    assert not can_edit_event(OTHER_ADMIN, 1, None)
    assert can_post_notice(TEACHER, 1, "class", 10)
    assert not can_post_notice(TEACHER, 1, "class", 11)
    assert not can_post_notice(TEACHER, 1, "grade")
    assert not can_post_notice(TEACHER, 1, "school")
    assert can_post_notice(ADMIN, 1, "grade") and not can_post_notice(OTHER_ADMIN, 1, "school")
    assert can_manage_staff(ADMIN, 1) and not can_manage_staff(TEACHER, 1)
    assert not can_manage_staff(OTHER_ADMIN, 1)
    assert can_manage_prompts(ADMIN, 1) and not can_manage_prompts(TEACHER, 1)


def test_require() -> None:
    require(True)
    try:
        require(False, "register")
    except PermissionDenied as exc:
        assert str(exc) == "register"
    else:  # pragma: no cover
        raise AssertionError("require(False) must raise")
