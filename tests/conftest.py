"""Shared fixtures; each area keeps its fixtures in its own module, registered here."""

pytest_plugins = [
    "tests.db_fixtures",
    "tests.prompts_fixtures",  # before the portals' fixtures, which import it
    "tests.web_fixtures",  # before the staff portal's, which import it
    "tests.staff_fixtures",
    "tests.fresh_school",
    "tests.asterisk_harness",
    "tests.cluster_harness",
]
