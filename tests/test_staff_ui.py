"""First-hour rough edges of the staff pages (issue 14, point 14): the campaign list names a
campaign once, language codes have one spelling, sending asks for a confirmation the server
checks, and a reply without a sender address says so."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.urls import reverse

from campaign.models import Agency
from campaign.services import create_campaign
from letters import batches, sending, states
from letters.models import InboundMessage, Letter
from letters.recipient import submit_feedback
from tests.conftest import make_user
from tests.letters import conftest as letters_fixtures
from tests.letters.helpers import approved_batch

pytestmark = pytest.mark.django_db

compiled_translations = letters_fixtures.compiled_translations
agency = letters_fixtures.agency
finding = letters_fixtures.finding


class _Text(HTMLParser):
    """The text a person reads: character data, not attributes, scripts or styles."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs) -> None:
        self._skip += tag in ("script", "style")

    def handle_endtag(self, tag) -> None:
        self._skip -= tag in ("script", "style") and self._skip > 0

    def handle_data(self, data) -> None:
        if not self._skip:
            self.parts.append(data)


def visible_text(response) -> str:
    assert response.status_code == 200, response
    parser = _Text()
    parser.feed(response.content.decode())
    return " ".join(" ".join(parser.parts).split())


def test_the_campaign_list_shows_a_slug_the_name_already_carries_once(client, bob, agency):
    create_campaign(slug="demo", agency_name=agency.name,
                    name="Operation Secure Your Server (demo)")
    create_campaign(slug="oss-2027", agency_name=agency.name, name="Operation 2027")
    create_campaign(slug="plain", agency_name=agency.name)
    client.force_login(bob)
    text = visible_text(client.get(reverse("campaign_list")))
    assert "(demo) (demo)" not in text
    assert text.count("(demo)") == 1
    assert "Operation 2027 (oss-2027)" in text  # a slug the name does not show is still shown
    assert "plain (plain)" not in text


@pytest.fixture
def brazilian_batch(campaign, bob, rita, finding):
    """A submitted batch with a letter in Brazilian Portuguese (stored as Django's `pt-br`)."""
    host = finding(email="abuse@provedor.br.example", language="pt-BR", country="BR")
    finding(email="abuse@isp.de.example", language="de", country="DE")
    batch = batches.build_batch(campaign=campaign, actor=bob)
    batches.submit_batch(batch=batch, actor=bob)
    letter = Letter.objects.get(email="abuse@provedor.br.example")
    assert letter.language == "pt-br"  # the internal spelling the pages must not show
    Agency.objects.filter(pk=campaign.agency_id).update(default_language="pt-br")
    return batch, letter, host


def test_staff_pages_spell_language_codes_one_way(client, campaign, brazilian_batch):
    batch, letter, host = brazilian_batch
    admin = make_user("ada", "admin", campaign.agency.name)
    client.force_login(admin)
    slug = campaign.slug
    pages = {
        "review queue": reverse("review_queue"),
        "batch": reverse("batch_detail", args=[slug, batch.pk]),
        "letters": reverse("letter_list", args=[slug]),
        "letter": reverse("letter_detail", args=[slug, letter.pk]),
        "preview": reverse("letter_preview", args=[slug, letter.pk]),
        "host": reverse("host_detail", args=[slug, host.ip]),
        "build form": reverse("batch_create", args=[slug]),
        "agencies": reverse("agency_list"),
        "contact form": reverse("contact_set", args=[slug, host.ip]),
    }
    for name, path in pages.items():
        text = visible_text(client.get(path))
        assert "pt-br" not in text, name
        assert "pt-BR" in text, name


def test_sending_a_batch_needs_a_confirmation_the_server_checks(
    client, bob, rita, campaign, finding, mailoutbox, django_capture_on_commit_callbacks
):
    for email in ("abuse@isp.de.example", "noc@isp.jp.example"):
        finding(email=email, language="en", country="US")
    batch = approved_batch(campaign, bob, rita)
    client.force_login(bob)
    send = reverse("batch_send", args=[campaign.slug, batch.pk])
    page = client.get(reverse("batch_detail", args=[campaign.slug, batch.pk])).content.decode()
    assert "I confirm sending 2 letters to 2 recipients" in page
    assert 'type="checkbox" name="confirm"' in page and "required" in page

    refused = [{}, {"letters": "2"}, {"confirm": "on"}, {"confirm": "on", "letters": "3"}]
    for data in refused:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            response = client.post(send, data)
        assert response.status_code == 400, data
        assert callbacks == [] and mailoutbox == [], data
        batch.refresh_from_db()
        assert batch.state == states.APPROVED, data
    assert "Tick the box to confirm the sending." in client.post(send, {}).content.decode()
    assert "The batch changed since this page was shown" in client.post(
        send, {"confirm": "on", "letters": "3"}).content.decode()
    assert set(batch.letters.values_list("state", flat=True)) == {states.QUEUED}

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(send, {"confirm": "on", "letters": "2"})
    assert response.status_code == 302
    batch.refresh_from_db()
    assert batch.state == states.SENT and len(mailoutbox) == 2


def test_a_reply_without_a_sender_address_says_the_sender_is_unknown(
    client, bob, rita, campaign, finding
):
    finding(email="abuse@isp.bg.example", language="bg", country="BG")
    batch = approved_batch(campaign, bob, rita)
    sending.send_batch(batch=batch, actor=bob, sleep=lambda s: None)
    letter = Letter.objects.get()
    submit_feedback(letter, kind="message", text="We fixed it.", token="t", client_ip="192.0.2.1")
    InboundMessage.objects.create(letter=letter, esp="mailgun",
                                  from_email="admin@isp.bg.example", subject="Re: fixed")
    client.force_login(rita)
    text = visible_text(client.get(reverse("letter_detail", args=[campaign.slug, letter.pk])))
    assert "Reply (sender unknown)" in text
    assert "Reply from admin@isp.bg.example" in text
    assert "Reply from —" not in text
