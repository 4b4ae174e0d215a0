"""Suite-wide settings: Hypothesis profiles (no deadlines; speed belongs in bench/), the
infrastructure fixtures: databases (PostgreSQL and SQLite) and the browser (tests/support/),
and the bad-input campaign's session summary (tests/campaign/plugin.py)."""

import os

from hypothesis import HealthCheck, settings

pytest_plugins = ("tests.support.databases", "tests.support.browser", "tests.campaign.plugin")

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("ci" if os.environ.get("CI") else "default")
