"""What the roster import and the rollover say about a problem, in the reader's language.

The pure rules report a code and its values (renraku.rules.roster.Problem); the web pages
and the ``renraku roster`` / ``renraku year`` commands turn them into sentences here.
"""

from __future__ import annotations

from collections.abc import Callable

from renraku.rules.roster import Problem


def N_(message: str) -> str:  # marks a msgid for extraction; translated when shown
    return message


PROBLEMS = {
    "empty_file": N_("The file is empty."),
    "binary_file": N_("This is not a CSV text file (an Excel workbook? Save it as CSV)."),
    "unknown_encoding": N_("Unknown encoding %(encoding)s: choose UTF-8 or Shift_JIS."),
    "bad_encoding": N_("The file is not valid %(encoding)s text (line %(line)s): choose the "
                       "other encoding, or let Renraku detect it."),
    "undetected_encoding": N_("The file is neither UTF-8 nor Shift_JIS (CP932) text."),
    "duplicate_column": N_("The column %(column)s appears twice in the header."),
    "missing_column": N_("The header has no column %(column)s."),
    "no_rows": N_("The file has a header but no rows."),
    "empty_value": N_("Line %(line)s: %(column)s is empty."),
    "bad_grade": N_("Line %(line)s: the grade %(value)s is not a number from 0 to 9."),
    "bad_number": N_("Line %(line)s: the attendance number %(value)s is not a number."),
    "empty_reading": N_("Line %(line)s: student %(number)s has no reading (ふりがな); the "
                        "phone line needs it to say the name."),
    "bad_date": N_("Line %(line)s: %(value)s is not a date (write 2019-04-02)."),
    "duplicate_student_number": N_("Line %(line)s: student number %(number)s is already on "
                                   "line %(first)s."),
    "unknown_class": N_("Line %(line)s: there is no class %(grade)s-%(class)s in this year: "
                        "create it first."),
    "left_student": N_("Line %(line)s: student %(number)s has left the school."),
    "unknown_student": N_("Line %(line)s: no current student has the number %(number)s."),
    "not_assigned": N_("Student %(number)s (%(name)s) has no class in the new year's list."),
    # rollover refusals
    "no_year": N_("The school has no classes with children to move up yet."),
    "not_next": N_("Roll over to %(year)s first."),
    "already_done": N_("The year %(year)s has been rolled over already."),
    "too_early": N_("The new school year can be started from %(day)s; until then the "
                    "preview shows what will happen."),
}


def problem_text(_: Callable[..., str], problem: Problem) -> str:
    return say(_, problem.code, {"line": str(problem.line), **problem.params})


def say(_: Callable[..., str], code: str, params: dict[str, str]) -> str:
    return _(PROBLEMS.get(code, code), **params)
