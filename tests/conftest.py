import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"  # a copy of ../shared/fixtures, see its README
FEEDS = FIXTURES / "feeds"

# Hypothesis: every property test carries the `fuzz` marker (`pytest -m fuzz` runs just those)
# and runs on a fixed budget in CI. The `ci` profile (the default) derandomizes, so every run
# tries the same examples and a failure reproduces from the test name alone; it keeps no
# example database and sets no deadline (a busy runner is not a bug). Each test states its
# number of examples as `max_examples=examples(N)` next to its @given: N is its CI budget.
# Locally, HYPOTHESIS_PROFILE=explore draws fresh examples each run and FUZZ_SCALE=10 tries
# ten times as many.
FUZZ_SCALE = int(os.environ.get("FUZZ_SCALE", "1"))
settings.register_profile(
    "ci", max_examples=50, derandomize=True, database=None, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                           HealthCheck.large_base_example, HealthCheck.data_too_large],
)
settings.register_profile("explore", settings.get_profile("ci"), derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def examples(n: int) -> int:
    """A fuzz test's number of examples: `n` in CI, scaled by FUZZ_SCALE when exploring."""
    return n * FUZZ_SCALE


@pytest.fixture
def feeds_dir() -> Path:
    return FEEDS


@pytest.fixture
def agency(db):
    from campaign.models import Agency

    return Agency.objects.create(name="Federal Trade Commission", country="US",
                                 sender_email="secureyourserver@ftc.example")


@pytest.fixture
def campaign(agency):
    from campaign.services import create_campaign

    return create_campaign(slug="oss-2026", agency_name=agency.name, kinds="relay,proxy")


FTC, BNETZA = "Federal Trade Commission", "Bundesnetzagentur"


def two_agency_campaigns():
    """The FTC (US) and the Bundesnetzagentur (DE), each with a campaign of its own: the
    worlds in which one agency's work must not show in or change the other's."""
    from campaign.models import Agency
    from campaign.services import create_campaign

    Agency.objects.create(name=FTC, country="US", jurisdiction=["US"])
    Agency.objects.create(name=BNETZA, country="DE", jurisdiction=["DE"])
    return (create_campaign(slug="ftc-2026", agency_name=FTC),
            create_campaign(slug="bnetza-2026", agency_name=BNETZA))


def make_user(username: str, role: str, agency_name: str | None = None):
    from campaign.services import add_user

    return add_user(
        username=username, role=role, password="correct-horse-9", agency_name=agency_name
    )


@pytest.fixture
def alice(db):
    """An analyst."""
    return make_user("alice", "analyst")


@pytest.fixture
def bob(db):
    """Campaign staff."""
    return make_user("bob", "staff")


@pytest.fixture
def rita(db):
    """A reviewer."""
    return make_user("rita", "reviewer")


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate-limit and login-failure counters live in the cache: no test inherits another's."""
    from django.core.cache import cache

    cache.clear()
    yield
