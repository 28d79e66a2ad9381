"""Postal letters, the end of the fallback chain: built into a batch and reviewed like any
letter, printed only once approved, marked posted (the hosts are then notified) and returned
(the address is then given up); the mailer never sends them; the short link a printed letter
gives opens the recipient's page only once the letter was posted."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from campaign import states as host_states
from campaign.models import AuditEvent, Campaign, Host
from letters import batches, sending, shortlinks, states
from letters.errors import LetterError
from letters.models import Letter, Retest
from letters.postal import printing
from letters.postal import services as postal
from probes.contacts.fallback import NO_WAY_LEFT
from probes.contacts.models import Contact, NetworkRecord
from probes.contacts.resolving import _contact_for
from probes.contacts.selectors import SuppressionList
from tests.contacts.fakes import FIXTURES
from tests.letters.conftest import POSTAL_ADDRESS
from tests.letters.helpers import approved_batch

pytestmark = pytest.mark.django_db


@pytest.fixture
def by_post(campaign, postal_finding):
    """Two hosts of one owner (one letter) and a host of another, all reachable by post."""
    first = postal_finding(ip="203.0.113.10")
    postal_finding(ip="203.0.113.11")
    postal_finding(ip="203.0.113.12", address="Kita Networks\n1-2-3 Chiyoda\nTokyo 100-0001\nJP",
                   language="ja", country="JP")
    return first


def test_a_batch_writes_by_post_to_hosts_no_e_mail_address_reaches(campaign, bob, by_post,
                                                                      finding):
    finding(email="abuse@isp.example")
    batch = batches.build_batch(campaign=campaign, actor=bob)
    email, harborline, kita = batch.letters.order_by("id")
    assert (email.channel, email.short_code) == (states.EMAIL, "")
    assert (harborline.channel, harborline.email, harborline.postal_address) == (
        states.POSTAL, "", POSTAL_ADDRESS)
    assert harborline.letter_hosts.count() == 2  # one letter per address, all its hosts
    assert (kita.language, kita.letter_hosts.count()) == ("ja", 1)
    # Typed from paper: the printed letter's link is the short one, and no letterhead is in
    # the text (the printed page carries it at its head).
    short = shortlinks.short_url(harborline.short_code)
    assert harborline.context["recipient_url"] == short
    assert short in harborline.body_text and short in harborline.body_html
    assert "FEDERAL TRADE COMMISSION" not in harborline.body_html
    assert "FEDERAL TRADE COMMISSION" in email.body_html
    assert not harborline.body_html.lstrip().startswith("<!DOCTYPE")
    # Built again: nothing new (the hosts are in a live postal letter).
    assert batches.build_batch(campaign=campaign, actor=bob).letters.count() == 0


def test_postal_letters_pass_the_control_group_and_the_cadence(campaign, bob, by_post):
    # Both draw and pace by e-mail address; a postal letter has none, and one owner's hosts
    # still share one letter.
    Campaign.objects.filter(pk=campaign.pk).update(holdout_percent=100)
    batch = batches.build_batch(campaign=campaign, actor=bob)
    assert batch.letters.filter(channel=states.POSTAL).count() == 2


def test_the_mailer_never_sends_a_postal_letter(campaign, bob, rita, by_post, finding, mailoutbox):
    finding(email="abuse@isp.example")
    batch = approved_batch(campaign, bob, rita)
    summary = sending.send_batch(batch=batch)
    assert (summary.sent, [m.to for m in mailoutbox]) == (1, [["abuse@isp.example"]])
    batch.refresh_from_db()
    assert batch.state == states.SENT  # the e-mails are done; the post is the print room's
    assert set(batch.letters.filter(channel=states.POSTAL).values_list("state", flat=True)) == {
        states.QUEUED}
    letter = batch.letters.filter(channel=states.POSTAL).first()
    assert sending.send_letter(letter.pk) == sending.SKIPPED


def test_printing_needs_an_approved_batch_and_the_send_permission(campaign, bob, rita, alice,
                                                                  by_post):
    batch = batches.build_batch(campaign=campaign, actor=bob)
    with pytest.raises(LetterError, match="only an approved batch"):
        postal.print_batch(batch=batch, actor=bob)
    batches.submit_batch(batch=batch, actor=bob)
    batches.approve_batch(batch=batch, actor=rita)
    with pytest.raises(PermissionDenied):
        postal.print_batch(batch=batch, actor=alice)
    with pytest.raises(PermissionDenied):
        postal.mark_posted(batch=batch, actor=alice)
    printed = postal.print_batch(batch=batch, actor=bob)
    assert (printed.letters, printed.pages >= 2, printed.data[:5]) == (2, True, b"%PDF-")
    event = AuditEvent.objects.get(action="batch.printed")
    assert event.data == {"letters": 2, "pages": printed.pages, "format": "us10"}


def test_posting_notifies_the_hosts_once(campaign, bob, rita, by_post):
    batch = approved_batch(campaign, bob, rita)
    yesterday = timezone.localdate() - timedelta(days=1)
    with pytest.raises(LetterError, match="before the letter could leave"):
        postal.mark_posted(batch=batch, actor=bob, posted_on=yesterday - timedelta(days=9))
    with pytest.raises(LetterError, match="in the future"):
        postal.mark_posted(batch=batch, actor=bob,
                           posted_on=timezone.localdate() + timedelta(days=1))
    assert postal.mark_posted(batch=batch, actor=bob) == 2
    assert postal.mark_posted(batch=batch, actor=bob) == 0  # twice: nothing more
    letter = batch.letters.order_by("id").first()
    assert (letter.state, letter.posted_at is not None, letter.sent_at == letter.posted_at) == (
        states.SENT, True, True)
    assert set(Host.objects.values_list("state", flat=True)) == {host_states.NOTIFIED}
    batch.refresh_from_db()
    assert batch.state == states.SENT  # postal letters only: posting was its sending
    assert AuditEvent.objects.filter(action="batch.posted").count() == 1


def test_posting_some_letters_on_a_day(campaign, bob, rita, by_post):
    batch = approved_batch(campaign, bob, rita)
    first, second = batch.letters.order_by("id")
    today = timezone.localdate()
    assert postal.mark_posted(batch=batch, actor=bob, posted_on=today,
                              letter_ids=[first.pk]) == 1
    assert Letter.objects.get(pk=second.pk).state == states.QUEUED
    with pytest.raises(LetterError, match="not postal letters of batch"):
        postal.mark_posted(batch=batch, actor=bob, letter_ids=[999999])


def test_a_returned_letter_gives_the_address_up(campaign, bob, rita, by_post):
    batch = approved_batch(campaign, bob, rita)
    postal.mark_posted(batch=batch, actor=bob)
    letter = batch.letters.order_by("id").first()
    with pytest.raises(LetterError, match="say why"):
        postal.mark_returned(letter=letter, actor=bob, reason="  ")
    returned = postal.mark_returned(letter=letter, actor=bob, reason="addressee unknown")
    assert (returned.state, returned.returned_at is not None) == (states.BOUNCED, True)
    assert returned.last_error == "returned by the post: addressee unknown"
    contact = Contact.objects.get(host=by_post)
    assert contact.postal_address == ""
    assert contact.last_error == f"{NO_WAY_LEFT} (addressee unknown)"
    assert contact.fallbacks[-1]["replaced"] == POSTAL_ADDRESS
    assert Host.objects.get(pk=by_post.pk).state == host_states.NO_CONTACT
    # Nothing left to write to: no batch takes those hosts again.
    assert batches.build_batch(campaign=campaign, actor=bob).letters.count() == 0
    with pytest.raises(LetterError, match="only a posted letter"):
        postal.mark_returned(letter=returned, actor=bob, reason="again")


def test_a_host_notified_by_post_and_still_open_gets_a_second_notice_by_post(
        campaign, bob, rita, by_post):
    postal.mark_posted(batch=approved_batch(campaign, bob, rita), actor=bob)
    evidence = [{"check": "smtp_relay", "port": 25, "when": timezone.now().isoformat()}]
    Retest.objects.create(campaign=campaign, host=by_post, outcome=Retest.STILL_OPEN,
                          evidence=evidence)
    (second,) = batches.build_batch(campaign=campaign, actor=bob).letters.all()
    assert (second.kind, second.channel, second.postal_address) == (
        states.SECOND_NOTICE, states.POSTAL, POSTAL_ADDRESS)


def test_a_contact_without_any_e_mail_address_takes_the_registry_s_postal_address(campaign):
    raw = (FIXTURES / "rdap" / "arin-ip-99.232.0.0-17.json").read_text()
    network = NetworkRecord.objects.create(
        network="99.232.0.0/17", start_address="99.232.0.0", end_address="99.232.127.255",
        raw=raw, source="rdap", email="", organisation="Harborline Communications, LLC",
        expires_at=timezone.now() + timedelta(days=30))
    contact = _contact_for(1, "US", network, None, timezone.now(), "", SuppressionList.load())
    assert contact.status == Contact.NO_CONTACT
    assert contact.postal_address.startswith("Harborline Communications, LLC\n4100 Pier Avenue")


def test_the_short_link_opens_the_page_only_once_posted(client, campaign, bob, rita, by_post):
    batch = approved_batch(campaign, bob, rita)
    letter = batch.letters.order_by("id").first()
    typed = shortlinks.display_code(letter.short_code).lower().replace("0", "o")
    assert client.get(f"/s/{typed}").status_code == 404  # printed, not posted yet
    postal.mark_posted(batch=batch, actor=bob)
    response = client.get(f"/s/{typed}")
    assert response.status_code == 302
    page = client.get(response["Location"])
    assert page.status_code == 200 and "203.0.113.10" in page.content.decode()
    assert client.get("/s/AAAA-BBBB-CCCC").status_code == 404
    assert client.get("/s/not-a-code").status_code == 404
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.CLOSED)
    assert client.get(f"/s/{typed}").status_code == 404


def test_short_link_guesses_are_rate_limited(client, settings):
    settings.RECIPIENT_RATE_LIMITS = {"short_code_ip": (3, 3600)}
    answers = [client.get("/s/AAAA-BBBB-CCC1").status_code for _ in range(4)]
    assert answers == [404, 404, 404, 429]


@pytest.mark.parametrize(("typed", "read"), [
    ("k7qm-4xpd-2hna", "K7QM4XPD2HNA"), ("K7QM 4XPD 2HNA", "K7QM4XPD2HNA"),
    ("OIL0-0000-0000", "011000000000"), ("K7QM-4XPD-2HN", None), ("K7QM-4XPD-2HNU", None),
])
def test_a_typed_code_is_read_forgivingly(typed, read):
    assert shortlinks.read_code(typed) == read


def test_the_addresses_csv_is_a_mail_merge_list_and_runs_no_formula(campaign, bob, rita,
                                                                     postal_finding):
    postal_finding(address="=HYPERLINK(\"http://evil.example\")\nLine 2\n@SUM(1)")
    batch = approved_batch(campaign, bob, rita)
    rows = list(csv.DictReader(io.StringIO(postal.batch_addresses_csv(batch=batch, actor=bob))))
    (row,) = rows
    assert row["line_1"] == "'=HYPERLINK(\"http://evil.example\")"
    assert (row["line_2"], row["line_3"], row["line_4"]) == ("Line 2", "'@SUM(1)", "")
    letter = batch.letters.get()
    assert row["reference"] == shortlinks.display_code(letter.short_code)
    assert row["short_url"] == shortlinks.short_url(letter.short_code)


def test_the_command_prints_the_batch_and_marks_it(campaign, bob, rita, by_post, tmp_path,
                                                    capsys):
    batch = approved_batch(campaign, bob, rita)
    out, addresses = tmp_path / "batch.pdf", tmp_path / "addresses.csv"
    call_command("letters_batch", "pdf", str(batch.pk), "--out", str(out),
                 "--csv", str(addresses))
    line = capsys.readouterr().out.strip()
    pages = int(line.split()[0].removeprefix("pages="))
    assert line == f"pages={pages} letters=2" and pages >= 2
    assert out.read_bytes().startswith(b"%PDF-")
    assert len(list(csv.DictReader(addresses.open()))) == 2
    call_command("letters_batch", "posted", str(batch.pk), "--by", "bob")
    assert capsys.readouterr().out.strip() == f"batch={batch.pk} posted=2"
    letter = batch.letters.order_by("id").first()
    call_command("letters_batch", "returned", str(letter.pk), "--by", "bob",
                 "--reason", "moved away")
    assert capsys.readouterr().out.strip() == f"letter={letter.pk} state=bounced"
    with pytest.raises(CommandError, match="not a date"):
        call_command("letters_batch", "posted", str(batch.pk), "--by", "bob", "--date", "soon")
    with pytest.raises(CommandError, match="cannot write"):
        call_command("letters_batch", "pdf", str(batch.pk), "--out",
                     str(tmp_path / "missing" / "x.pdf"))
    draft = batches.build_batch(campaign=campaign, actor=bob)
    with pytest.raises(CommandError):
        call_command("letters_batch", "pdf", str(draft.pk), "--out", str(out))


def test_the_pages_print_post_and_return(client, campaign, bob, rita, by_post):
    batch = approved_batch(campaign, bob, rita)
    client.force_login(bob)
    page = client.get(reverse("batch_detail", args=[campaign.slug, batch.pk])).content.decode()
    assert "2 to print and post, 0 posted, 0 returned." in page
    assert 'id="no-email-note"' in page and "Send 0 letters" not in page
    pdf = client.get(reverse("batch_print", args=[campaign.slug, batch.pk]))
    assert (pdf["Content-Type"], pdf.content[:5]) == ("application/pdf", b"%PDF-")
    assert "attachment" in pdf["Content-Disposition"]
    listing = client.get(reverse("batch_addresses", args=[campaign.slug, batch.pk]))
    assert listing["Content-Type"].startswith("text/csv")
    response = client.post(reverse("batch_posted", args=[campaign.slug, batch.pk]),
                           {"posted_on": timezone.localdate().isoformat()})
    assert response.status_code == 302
    assert Letter.objects.filter(batch=batch, state=states.SENT).count() == 2
    letter = batch.letters.order_by("id").first()
    detail = client.get(reverse("letter_detail", args=[campaign.slug, letter.pk])).content.decode()
    assert "4100 Pier Avenue<br>Suite 300" in detail and "Mark as returned" in detail
    client.post(reverse("letter_returned", args=[campaign.slug, letter.pk]),
                {"reason": "refused"})
    assert Letter.objects.get(pk=letter.pk).state == states.BOUNCED
    figures = client.get(reverse("deliverability", args=[campaign.slug])).content.decode()
    assert '<div data-count="postal_posted"><dt>Postal letters posted</dt><dd>2</dd>' in figures
    assert '<div data-count="postal_returned"><dt>… returned by the post</dt><dd>1</dd>' in figures


def test_a_draft_letter_previews_as_printed_marked_draft(client, campaign, bob, by_post):
    batch = batches.build_batch(campaign=campaign, actor=bob)
    letter = batch.letters.order_by("id").first()
    client.force_login(bob)
    response = client.get(reverse("letter_pdf", args=[campaign.slug, letter.pk]))
    assert response.status_code == 200 and "inline" in response["Content-Disposition"]
    html = printing.print_html([letter], fmt=printing.FORMATS["din5008"], draft=True)
    assert "DRAFT — NOT APPROVED" in html
