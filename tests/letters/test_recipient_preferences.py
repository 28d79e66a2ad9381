"""The recipient's choices on their page: the language of future letters, business days only."""

import os
import uuid
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
import time_machine

from campaign import states as host_states
from campaign.models import AuditEvent, Host
from letters import batches, recipient, sending, states
from letters.models import ContactPreference, Letter, Retest
from probes.contacts.models import Contact
from tests.letters.conftest import add_finding
from tests.letters.helpers import approved_batch

pytestmark = pytest.mark.django_db

# Friday 2026-11-20 23:30 UTC is already Saturday 08:30 in Tokyo.
FRIDAY_NIGHT_UTC = datetime(2026, 11, 20, 23, 30, tzinfo=UTC)
# Sunday 2026-11-22 16:00 UTC is Monday 01:00 in Tokyo.
MONDAY_IN_TOKYO = datetime(2026, 11, 22, 16, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fresh_cache(settings):
    """The real Redis cache, under a prefix of its own so rate limits never leak."""
    settings.CACHES = {"default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"),
        "KEY_PREFIX": f"test-{uuid.uuid4().hex}",
    }}


def path_of(letter: Letter) -> str:
    return urlsplit(letter.context["recipient_url"]).path


@pytest.fixture
def german_letter(campaign, bob, rita):
    """A sent letter in German about two hosts of noc@alice.example."""
    hosts = [add_finding(campaign, email="noc@alice.example", language="de", country="DE")
             for _ in range(2)]
    assert sending.send_batch(batch=approved_batch(campaign, bob, rita)).sent == 1
    return Letter.objects.get(email="noc@alice.example"), hosts


def test_the_recipient_chooses_the_language_of_the_next_letter(
        client, campaign, bob, rita, german_letter):
    letter, hosts = german_letter
    page = client.get(path_of(letter)).content.decode()
    assert 'id="preferences"' in page
    assert page.count('<option value="') == 21 + 1  # the 21 languages and "as now"
    response = client.post(path_of(letter) + "preferences/",
                           {"letter_language": "ja", "time_zone": ""})
    assert response.status_code == 302 and response["Location"].endswith("#preferences")
    chosen = ContactPreference.objects.filter(contact__host__in=hosts)
    assert sorted(chosen.values_list("language", flat=True)) == ["ja", "ja"]
    assert not any(chosen.values_list("business_days_only", flat=True))
    assert AuditEvent.objects.filter(action=recipient.PREFERENCES_ACTION,
                                     object_id=str(letter.pk)).exists()
    page = client.get(response["Location"]).content.decode()
    assert '<option value="ja" lang="ja" selected>' in page
    # The next letter to this contact (a second notice) is written in Japanese.
    campaign.agency.min_days_between_letters = 0
    campaign.agency.save(update_fields=["min_days_between_letters"])
    host = Host.objects.get(pk=hosts[0].pk)
    assert host.state == host_states.NOTIFIED
    Retest.objects.create(campaign=campaign, host=host, outcome=Retest.STILL_OPEN,
                          evidence=[{"check": "smtp_relay", "port": 25,
                                     "when": "2026-12-20T10:00:00+00:00", "variant": "plain"}])
    batch = batches.build_batch(campaign=campaign, actor=bob)
    [second] = batch.letters.all()
    assert second.kind == states.SECOND_NOTICE and second.language == "ja"
    assert 'lang="ja"' in second.body_html and second.subject != letter.subject


@pytest.mark.parametrize("form", [
    {"letter_language": "xx"},
    {"letter_language": "de", "business_days_only": "1", "time_zone": ""},
    {"letter_language": "", "business_days_only": "1", "time_zone": "Mars/Olympus_Mons"},
    {"letter_language": "", "business_days_only": "1", "time_zone": "../../etc/passwd"},
])
def test_an_unknown_language_or_time_zone_is_refused_and_nothing_is_stored(
        client, german_letter, form):
    letter, _ = german_letter
    response = client.post(path_of(letter) + "preferences/", form)
    assert response.status_code == 400
    # The page speaks the letter's language, its error too.
    assert "Bitte wählen Sie eine Sprache aus der Liste" in response.content.decode()
    assert not ContactPreference.objects.exists()


def test_business_days_only_is_stored_with_the_zone_on_every_contact_of_the_letter(
        client, german_letter):
    letter, hosts = german_letter
    response = client.post(path_of(letter) + "preferences/", {
        "letter_language": "", "business_days_only": "1", "time_zone": "Europe/Berlin"})
    assert response.status_code == 302
    stored = ContactPreference.objects.filter(contact__host__in=hosts)
    assert stored.count() == 2
    assert set(stored.values_list("language", "business_days_only", "time_zone")) == {
        ("", True, "Europe/Berlin")}


def test_a_business_days_only_letter_waits_queued_until_a_weekday_in_the_recipients_zone(
        campaign, bob, rita):
    tokyo = add_finding(campaign, email="noc@tokyo.example", language="ja", country="JP")
    add_finding(campaign, email="noc@anytime.example", language="en", country="US")
    ContactPreference.objects.create(contact=Contact.objects.get(host=tokyo),
                                     business_days_only=True, time_zone="Asia/Tokyo")
    batch = approved_batch(campaign, bob, rita)
    with time_machine.travel(FRIDAY_NIGHT_UTC, tick=False):
        summary = sending.send_batch(batch=batch)
    # Still Friday in UTC, but Saturday in Tokyo: only the other letter leaves.
    assert (summary.sent, summary.waiting, summary.failed) == (1, 1, 0)
    waiting = Letter.objects.get(email="noc@tokyo.example")
    assert waiting.state == states.QUEUED and waiting.sent_at is None
    assert waiting.claimed_at is None and waiting.attempts == 0
    assert waiting.last_error == (
        "waiting: the recipient asked for letters on business days only; it is Saturday in "
        "Asia/Tokyo; not before 2026-11-23T00:00:00+09:00")
    batch.refresh_from_db()
    assert batch.state == states.SENDING  # not finished while a letter waits
    with time_machine.travel(MONDAY_IN_TOKYO, tick=False):
        summary = sending.send_batch(batch=batch)
    assert (summary.sent, summary.waiting) == (1, 0)
    waiting.refresh_from_db()
    assert waiting.state == states.SENT and waiting.sent_at == MONDAY_IN_TOKYO
    batch.refresh_from_db()
    assert batch.state == states.SENT


def test_the_send_command_says_how_many_letters_wait(campaign, bob, rita, capsys):
    from django.core.management import call_command

    host = add_finding(campaign, email="noc@tokyo.example", language="ja", country="JP")
    ContactPreference.objects.create(contact=Contact.objects.get(host=host),
                                     business_days_only=True, time_zone="Asia/Tokyo")
    batch = approved_batch(campaign, bob, rita)
    with time_machine.travel(FRIDAY_NIGHT_UTC, tick=False):
        call_command("letters_batch", "send", str(batch.pk))
    out, err = capsys.readouterr()
    assert out.strip().splitlines()[-1] == "sent=0 failed=0"
    assert "waiting=1" in err
