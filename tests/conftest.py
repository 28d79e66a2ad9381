from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"  # a copy of ../shared/fixtures, see its README
FEEDS = FIXTURES / "feeds"


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
