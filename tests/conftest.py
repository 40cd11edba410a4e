"""Shared fixtures; each area keeps its fixtures in its own module, registered here."""

# CPython 3.11.7's AST recursion-depth bookkeeping (gh-106905) can fail an ast.parse made
# late in a long session: Hypothesis's plugin imports this module (rewritten by pytest, so
# parsed) only in the terminal summary, and crashed the run after every test had passed.
# Importing it now parses it while the interpreter's state is fresh.
import hypothesis.internal.observability  # noqa: F401

pytest_plugins = [
    "tests.db_fixtures",
    "tests.prompts_fixtures",  # before the portals' fixtures, which import it
    "tests.web_fixtures",  # before the staff portal's, which import it
    "tests.staff_fixtures",
    "tests.fresh_school",
    "tests.asterisk_harness",
    "tests.cluster_harness",
]
