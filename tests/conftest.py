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


def pytest_configure(config: object) -> None:
    """Compile the cohort engine's kernel once, in the controlling process, before any test
    runs: numba caches it on disk and every xdist worker then loads it in well under a
    second, instead of each compiling it (about 15 s) inside whichever test comes first
    (the bad-input campaign would take that for a hang on a fresh clone)."""
    if hasattr(config, "workerinput"):
        return
    from dataclasses import replace

    from itb import bootstrap
    from itb.services.cohort_trial import default_arm
    from itb.simulation.cohort_trial import implant, run_implanted

    setup = replace(bootstrap.cohort_setup(), seed=1, patients=4, horizon_days=2)
    imp = implant(setup, 0, 4)
    run_implanted(setup, imp, default_arm(bootstrap.catalog(), "compile"))
