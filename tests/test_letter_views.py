"""The letter pages through Django's test client: building, previewing, reviewing with four
eyes, sending, and following letters and their (hostile) replies."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from campaign import states as host_states
from campaign.models import AuditEvent
from letters import batches, sending, states, tracking
from letters.models import Batch, InboundMessage, Letter, LetterEvent
from tests.conftest import make_user
from tests.letters import conftest as letters_fixtures
from tests.letters.helpers import approved_batch

pytestmark = pytest.mark.django_db

# The letters suite's fixtures: compiled catalogs, a full agency, an admin, hosts verified
# open with a resolved contact (real rows, made the way the pipeline leaves them).
compiled_translations = letters_fixtures.compiled_translations
agency = letters_fixtures.agency
ada = letters_fixtures.ada
finding = letters_fixtures.finding


def url(name, *args):
    return reverse(name, args=args)


def body(response) -> str:
    return response.content.decode()


def queries_for(client, path) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path)
    assert response.status_code == 200, path
    return len(ctx.captured_queries)


@pytest.fixture
def three_contacts(finding):
    return [
        finding(email="abuse@isp.de.example", language="de", country="DE"),
        finding(email="noc@isp.jp.example", language="ja", country="JP"),
        finding(email="abuse@isp.us.example", language="en", country="US"),
    ]


def built(campaign, actor, **filters) -> Batch:
    return batches.build_batch(campaign=campaign, actor=actor, **filters)


def submitted(campaign, actor, **filters) -> Batch:
    batch = built(campaign, actor, **filters)
    return batches.submit_batch(batch=batch, actor=actor)


# --- building ------------------------------------------------------------------------------


def test_staff_build_a_batch_with_filters_and_land_on_its_letters(client, bob, campaign,
                                                                   three_contacts):
    client.force_login(bob)
    form = client.get(url("batch_create", campaign.slug))
    assert '<label for="id_country">Country</label>' in body(form)
    assert '<option value="ja">日本語 (ja)</option>' in body(form)
    response = client.post(url("batch_create", campaign.slug),
                           {"country": "jp", "language": "", "max_letters": ""})
    batch = Batch.objects.get()
    assert response["Location"] == url("batch_detail", campaign.slug, batch.pk)
    assert batch.filters == {"language": "", "country": "JP", "max": None}
    assert batch.created_by == bob and batch.state == states.DRAFT
    page = body(client.get(response["Location"]))
    assert f"Draft batch #{batch.pk} with 1 letter." in page
    assert 'data-email="noc@isp.jp.example"' in page
    assert "abuse@isp.de.example" not in page
    assert f"<code>{three_contacts[1].ip}</code>" in page
    assert "日本語 (ja)" in page
    assert "Submit for review" in page
    assert "Approve batch" not in page


def test_a_build_that_matches_nothing_explains_why_and_leaves_no_batch(client, bob, campaign,
                                                                       three_contacts):
    client.force_login(bob)
    response = client.post(url("batch_create", campaign.slug), {"country": "FR"})
    assert response.status_code == 400
    assert "No host matches" in body(response)
    assert not Batch.objects.exists()
    assert not AuditEvent.objects.filter(action="batch.create").exists()
    bad = client.post(url("batch_create", campaign.slug), {"country": "France",
                                                           "max_letters": "0"})
    assert bad.status_code == 400
    assert "Use a two-letter country code" in body(bad)
    assert "greater than or equal to 1" in body(bad)


def test_only_roles_that_build_see_the_button_and_may_post(client, alice, rita, bob, campaign,
                                                          three_contacts):
    for user in (alice, rita):
        client.force_login(user)
        page = body(client.get(url("campaign_detail", campaign.slug)))
        assert url("batch_create", campaign.slug) not in page
        assert client.get(url("batch_create", campaign.slug)).status_code == 403
        assert client.post(url("batch_create", campaign.slug)).status_code == 403
    assert not Batch.objects.exists()
    client.force_login(bob)
    page = body(client.get(url("campaign_detail", campaign.slug)))
    assert f'href="{url("batch_create", campaign.slug)}"' in page
    assert "No batch of letters yet." in page


# --- previews ------------------------------------------------------------------------------


def test_the_preview_shows_the_letter_in_its_language_beside_english(client, rita, bob,
                                                                     campaign, three_contacts):
    batch = built(campaign, bob)
    letter = batch.letters.get(language="ja")
    client.force_login(rita)
    page = body(client.get(url("letter_preview", campaign.slug, letter.pk)))
    local = page.split('id="preview-local"', 1)[1].split("</section>", 1)[0]
    english = page.split('id="preview-en"', 1)[1].split("</section>", 1)[0]
    assert 'lang="ja"' in page.split('id="preview-local"', 1)[0].rsplit("<section", 1)[1]
    assert letter.subject in local and "オープンメールリレー" in local
    assert "Dear network administrator" in english
    assert "オープンメールリレー" not in english
    # The HTML part is escaped into a sandboxed frame: no markup of the letter reaches the page.
    frames = re.findall(r'<iframe class="letter-frame" sandbox="" [^>]*srcdoc="([^"]*)"', page)
    assert len(frames) == 2
    assert all(f.startswith("&lt;!DOCTYPE html&gt;") or f.startswith("&lt;") for f in frames)
    assert "<html" not in page.split("<main", 1)[1]
    assert three_contacts[1].ip in frames[0]
    # Reviewers read; they may not take letters out.
    assert "Take out of the batch" not in page


def test_an_english_letter_is_previewed_once(client, bob, campaign, three_contacts):
    letter = built(campaign, bob).letters.get(language="en")
    client.force_login(bob)
    page = body(client.get(url("letter_preview", campaign.slug, letter.pk)))
    assert 'id="preview-en"' not in page and page.count('class="letter-frame"') == 1
    assert "Dear network administrator" in page
    assert "Take out of the batch" in page


# --- review --------------------------------------------------------------------------------


def test_a_submitted_batch_waits_in_the_review_queue_for_reviewers_only(client, bob, rita,
                                                                       campaign, three_contacts):
    client.force_login(bob)
    batch = built(campaign, bob)
    response = client.post(url("batch_submit", campaign.slug, batch.pk))
    assert response.status_code == 302
    batch.refresh_from_db()
    assert batch.state == states.SUBMITTED
    assert "another person must approve it" in body(client.get(response["Location"]))
    assert client.get(url("review_queue")).status_code == 403
    assert url("review_queue") not in body(client.get(url("campaign_list")))

    client.force_login(rita)
    nav = body(client.get(url("campaign_list")))
    assert f'href="{url("review_queue")}"' in nav
    queue = client.get(url("review_queue"))
    row = body(queue).split(f'data-batch="{batch.pk}"', 1)[1].split("</tr>", 1)[0]
    assert f'href="{url("batch_detail", campaign.slug, batch.pk)}"' in row
    assert '<td class="num">3</td>' in row  # letters, and hosts
    assert "de × 1" in row and "ja × 1" in row and "en × 1" in row
    assert ">bob<" in row and "yours" not in row
    page = body(client.get(url("batch_detail", campaign.slug, batch.pk)))
    assert "Approve batch" in page and "Reject batch" in page


def test_the_builder_gets_no_approve_button_and_is_refused_when_posting_anyway(
    client, ada, campaign, three_contacts
):
    batch = submitted(campaign, ada)  # an admin may build and review, never both
    client.force_login(ada)
    queue = body(client.get(url("review_queue")))
    assert "yours" in queue.split(f'data-batch="{batch.pk}"', 1)[1].split("</tr>", 1)[0]
    page = body(client.get(url("batch_detail", campaign.slug, batch.pk)))
    assert "Approve batch" not in page
    assert url("batch_approve", campaign.slug, batch.pk) not in page
    assert "you cannot approve it: another reviewer must" in page
    assert "Reject batch" in page

    response = client.post(url("batch_approve", campaign.slug, batch.pk), {"comment": "lgtm"})
    assert response.status_code == 403
    assert "built or edited batch" in body(response)
    assert 'role="alert"' in body(response)
    batch.refresh_from_db()
    assert batch.state == states.SUBMITTED and batch.reviewed_by is None
    assert set(batch.letters.values_list("state", flat=True)) == {states.DRAFT}
    assert not AuditEvent.objects.filter(action="batch.approve").exists()


def test_an_editor_of_the_batch_may_not_approve_it_either(client, bob, ada, campaign,
                                                         three_contacts):
    batch = submitted(campaign, bob)
    letter = batch.letters.get(language="de")
    client.force_login(ada)
    response = client.post(url("letter_remove", campaign.slug, letter.pk),
                           {"reason": "the ISP asked for its NOC address"})
    assert response["Location"] == url("batch_detail", campaign.slug, batch.pk)
    batch.refresh_from_db()
    letter.refresh_from_db()
    assert letter.state == states.CANCELLED
    assert batch.state == states.DRAFT  # edited: back to draft for a fresh review
    assert "needs a fresh review" in body(client.get(response["Location"]))
    batches.submit_batch(batch=batch, actor=bob)
    assert "Approve batch" not in body(client.get(url("batch_detail", campaign.slug, batch.pk)))
    assert client.post(url("batch_approve", campaign.slug, batch.pk)).status_code == 403


def test_staff_and_analysts_cannot_review(client, alice, bob, campaign, three_contacts):
    batch = submitted(campaign, bob)
    for user in (alice, bob):
        client.force_login(user)
        page = body(client.get(url("batch_detail", campaign.slug, batch.pk)))
        assert "Approve batch" not in page and "Reject batch" not in page
        assert "Awaiting review" in page
        assert client.post(url("batch_approve", campaign.slug, batch.pk)).status_code == 403
        assert client.post(url("batch_reject", campaign.slug, batch.pk),
                           {"comment": "no"}).status_code == 403
    batch.refresh_from_db()
    assert batch.state == states.SUBMITTED


def test_a_rejection_needs_a_comment_and_shows_it(client, bob, rita, campaign, three_contacts):
    batch = submitted(campaign, bob)
    client.force_login(rita)
    empty = client.post(url("batch_reject", campaign.slug, batch.pk), {"comment": "   "})
    assert empty.status_code == 400
    assert "Say why the batch is rejected." in body(empty)
    batch.refresh_from_db()
    assert batch.state == states.SUBMITTED
    response = client.post(url("batch_reject", campaign.slug, batch.pk),
                           {"comment": "The <b>German</b> letter names the wrong ISP"})
    assert response.status_code == 302
    batch.refresh_from_db()
    assert batch.state == states.REJECTED and batch.reviewed_by == rita
    assert set(batch.letters.values_list("state", flat=True)) == {states.CANCELLED}
    page = body(client.get(response["Location"]))
    assert "The &lt;b&gt;German&lt;/b&gt; letter names the wrong ISP" in page
    assert "Rejected by rita" in page


def test_a_reviewer_approves_staff_send_and_the_letters_reach_the_outbox(
    client, bob, rita, campaign, three_contacts, mailoutbox, django_capture_on_commit_callbacks
):
    batch = submitted(campaign, bob)
    client.force_login(rita)
    response = client.post(url("batch_approve", campaign.slug, batch.pk),
                           {"comment": "reads well"})
    assert response.status_code == 302
    batch.refresh_from_db()
    assert batch.state == states.APPROVED and batch.reviewed_by == rita
    page = body(client.get(response["Location"]))
    assert "Send 3 letters" not in page  # reviewers do not send
    assert client.post(url("batch_send", campaign.slug, batch.pk)).status_code == 403

    client.force_login(bob)
    page = body(client.get(url("batch_detail", campaign.slug, batch.pk)))
    assert "Send 3 letters" in page
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(url("batch_send", campaign.slug, batch.pk),
                               {"confirm": "on", "letters": "3"})
    # The send task, queued after the commit; then (eager here) each letter's hosts moving
    # to notified say hosts_changed after their own commit.
    assert len(callbacks) == 4
    assert sorted(m.to[0] for m in mailoutbox) == [
        "abuse@isp.de.example", "abuse@isp.us.example", "noc@isp.jp.example"]
    batch.refresh_from_db()
    assert batch.state == states.SENT
    assert set(Letter.objects.values_list("state", flat=True)) == {states.SENT}
    page = body(client.get(response["Location"]))
    assert "Sending of batch" in page
    assert 'data-state="sent"' in page and "job-progress.js" not in page
    letters = body(client.get(url("letter_list", campaign.slug), {"state": "sent"}))
    assert letters.count('<span class="lstate lstate-sent">Sent</span>') == 3
    host_page = body(client.get(url("host_detail", campaign.slug, three_contacts[0].ip)))
    assert "Notified" in host_page
    assert '<span class="lstate lstate-sent">Sent</span>' in host_page.split('id="host-letters"')[1]
    # Sending twice sends nothing twice.
    with django_capture_on_commit_callbacks(execute=True):
        again = client.post(url("batch_send", campaign.slug, batch.pk))
    assert again.status_code == 409 and len(mailoutbox) == 3


def test_an_unapproved_batch_cannot_be_sent(client, bob, campaign, three_contacts, mailoutbox):
    batch = submitted(campaign, bob)
    client.force_login(bob)
    response = client.post(url("batch_send", campaign.slug, batch.pk))
    assert response.status_code == 409
    assert "only approved batches are sent" in body(response)
    assert mailoutbox == []


def test_the_batch_status_endpoint_counts_letters_by_state(client, bob, rita, campaign,
                                                          three_contacts):
    batch = approved_batch(campaign, bob, rita)
    sending.start_sending(batch=batch, actor=bob)
    first = batch.letters.order_by("id").first()
    assert sending.send_letter(first.pk) == sending.SENT
    client.force_login(rita)
    page = body(client.get(url("batch_detail", campaign.slug, batch.pk)))
    assert "job-progress.js" in page
    assert f'data-status-url="{url("batch_status", campaign.slug, batch.pk)}"' in page
    data = client.get(url("batch_status", campaign.slug, batch.pk)).json()
    assert data["status"] == "sending" and data["finished"] is False
    assert (data["done"], data["total"], data["percent"]) == (1, 3, 33)
    assert data["by_state"]["queued"] == 2 and data["by_state"]["sent"] == 1


def test_a_batch_of_another_campaign_is_not_found(client, bob, campaign, three_contacts):
    from campaign.services import create_campaign

    other = create_campaign(slug="other", agency_name="Federal Trade Commission", kinds="relay")
    batch = built(campaign, bob)
    letter = batch.letters.first()
    client.force_login(bob)
    assert client.get(url("batch_detail", other.slug, batch.pk)).status_code == 404
    assert client.get(url("letter_detail", other.slug, letter.pk)).status_code == 404
    assert client.get(url("letter_preview", other.slug, letter.pk)).status_code == 404


# --- letters, events and replies -----------------------------------------------------------


@pytest.fixture
def sent_letter(campaign, bob, rita, finding):
    finding(email="abuse@isp.bg.example", language="bg", country="BG")
    batch = approved_batch(campaign, bob, rita)
    sending.send_batch(batch=batch, actor=bob, sleep=lambda s: None)
    return Letter.objects.get()


def hostile_reply(letter, n=1):
    for i in range(n):
        InboundMessage.objects.create(
            letter=letter, esp="mailgun", from_email="admin@isp.bg.example",
            subject=f"Re: <img src=x onerror=alert({i})>",
            text="Fixed it.\n<script>alert('text')</script>",
            html="<p>Fixed</p><script>alert('html')</script><img src=https://tracker.example/p>",
        )


def test_a_letter_page_shows_its_timeline_and_escapes_hostile_replies(client, rita, sent_letter):
    tracking.move_letter(sent_letter, states.DELIVERED)
    LetterEvent.objects.create(letter=sent_letter, esp="mailgun", event_id="ev-1",
                               event_type="delivered", description="250 2.0.0 <b>OK</b>")
    hostile_reply(sent_letter)
    client.force_login(rita)
    page = body(client.get(url("letter_detail", sent_letter.campaign.slug, sent_letter.pk)))
    timeline = page.split('id="timeline"', 1)[1].split("</ol>", 1)[0]
    steps = re.findall(r"<strong>(?:<a [^>]*>)?([^<]+)", timeline)
    assert steps[:4] == ["Batch built", "Batch submitted for review", "Batch approved",
                         "Sending started"]
    assert "Letter sent" in steps and "mailgun: delivered" in steps
    assert steps[-1] == "Reply from admin@isp.bg.example"
    assert "by rita" in timeline and "250 2.0.0 &lt;b&gt;OK&lt;/b&gt;" in timeline
    replies = page.split('id="replies"', 1)[1]
    assert "<script>" not in page.split("<main", 1)[1].split("</main>", 1)[0]
    assert "onerror=alert" not in page.replace("&lt;img src=x onerror=alert(0)&gt;", "")
    assert "&lt;script&gt;alert(&#x27;text&#x27;)&lt;/script&gt;" in replies
    assert "&lt;img src=https://tracker.example/p&gt;" in replies
    assert "<img" not in replies
    assert '<span class="lstate lstate-delivered" id="letter-state">Delivered</span>' in page


def test_the_letter_list_filters_by_delivery_state(client, rita, sent_letter, finding, bob):
    tracking.move_letter(sent_letter, states.BOUNCED)
    finding(email="abuse@other.example")
    built(sent_letter.campaign, bob)
    client.force_login(rita)
    path = url("letter_list", sent_letter.campaign.slug)
    page = body(client.get(path))
    assert "Bounced <span class=\"muted\">(1)</span>" in page
    assert "Draft <span class=\"muted\">(1)</span>" in page
    bounced = client.get(path, {"state": "bounced"})
    assert [letter.pk for letter in bounced.context["letters_page"]] == [sent_letter.pk]
    assert client.get(path, {"state": "pwned"}).context["letters_page"].paginator.count == 2


# --- no N+1 --------------------------------------------------------------------------------


def test_the_batch_page_costs_the_same_queries_for_two_or_twenty_letters(client, bob, campaign,
                                                                         finding):
    for i in range(2):
        finding(email=f"small{i}@example.org", country="DE", language="de")
    small = built(campaign, bob, country="DE")
    for i in range(20):
        for _ in range(1 + i % 5):  # letters about one to five hosts
            finding(email=f"large{i}@example.org", country="FR", language="fr")
    large = built(campaign, bob, country="FR")
    client.force_login(bob)
    client.get(url("batch_detail", campaign.slug, small.pk))
    assert queries_for(client, url("batch_detail", campaign.slug, small.pk)) == queries_for(
        client, url("batch_detail", campaign.slug, large.pk))
    page = body(client.get(url("batch_detail", campaign.slug, large.pk)))
    assert "+2 more" in page  # five hosts: three shown


def test_the_letter_list_and_review_queue_cost_the_same_queries_at_any_size(
    client, bob, rita, campaign, finding
):
    finding(email="one@example.org")
    submitted(campaign, bob)
    client.force_login(rita)
    client.get(url("review_queue"))
    list_small = queries_for(client, url("letter_list", campaign.slug))
    queue_small = queries_for(client, url("review_queue"))
    for i in range(6):
        for j in range(3):
            finding(email=f"abuse{j}@isp{i}.example", language=["de", "fr", "ja"][j])
        submitted(campaign, bob)
    assert queries_for(client, url("letter_list", campaign.slug)) == list_small
    assert queries_for(client, url("review_queue")) == queue_small


def test_the_letter_page_costs_the_same_queries_with_many_events_and_replies(
    client, rita, sent_letter
):
    client.force_login(rita)
    path = url("letter_detail", sent_letter.campaign.slug, sent_letter.pk)
    client.get(path)
    before = queries_for(client, path)
    hostile_reply(sent_letter, n=5)
    for i in range(5):
        LetterEvent.objects.create(letter=sent_letter, esp="postmark", event_id=f"e{i}",
                                   event_type="opened")
    assert queries_for(client, path) == before


def test_campaign_and_host_pages_cost_no_more_queries_with_letters(client, bob, rita, campaign,
                                                                  finding):
    host = finding(email="first@example.org")
    client.force_login(bob)
    client.get(url("campaign_detail", campaign.slug))
    campaign_before = queries_for(client, url("campaign_detail", campaign.slug))
    host_before = queries_for(client, url("host_detail", campaign.slug, host.ip))
    approved_batch(campaign, bob, rita)
    for i in range(4):
        finding(email=f"more{i}@example.org")
        built(campaign, bob)
    assert queries_for(client, url("campaign_detail", campaign.slug)) == campaign_before
    assert queries_for(client, url("host_detail", campaign.slug, host.ip)) == host_before
    page = body(client.get(url("campaign_detail", campaign.slug)))
    assert page.count('<tr data-batch="') == 5
    assert "Queued" in page and "Draft" in page


def test_a_user_from_another_agency_cannot_see_the_batches(client, bob, campaign, finding):
    from campaign.services import create_campaign

    create_campaign(slug="bsi-2026", agency_name="BSI", kinds="relay")
    finding(email="x@example.org")
    batch = submitted(campaign, bob)
    outsider = make_user("dora", "reviewer", agency_name="BSI")
    client.force_login(outsider)
    assert client.get(url("batch_detail", campaign.slug, batch.pk)).status_code == 404
    assert f'data-batch="{batch.pk}"' not in body(client.get(url("review_queue")))
    assert client.post(url("batch_approve", campaign.slug, batch.pk)).status_code == 404


def test_host_state_is_untouched_by_a_rejected_batch(client, bob, rita, campaign, finding):
    host = finding(email="x@example.org")
    batch = submitted(campaign, bob)
    batches.reject_batch(batch=batch, actor=rita, comment="wrong")
    client.force_login(bob)
    page = body(client.get(url("host_detail", campaign.slug, host.ip)))
    assert host_states.HOST_STATE_LABELS[host_states.CONTACT_RESOLVED] in page
    assert '<span class="lstate lstate-cancelled">Cancelled</span>' in page


def test_the_letter_page_shows_what_came_back_by_kind(client, bob, sent_letter):
    from letters.inbound.receive import receive_raw
    from tests.letters.test_inbound_classify import gmail_bounce

    raw = gmail_bounce(sent_letter.idempotency_key, sent_letter.email)
    assert receive_raw(raw.encode(), source="pipe").kind == "bounce"
    receive_raw((f"From: <{sent_letter.email}>\nSubject: Automatic reply\n"
                 f"Auto-Submitted: auto-replied\nIn-Reply-To: {sent_letter.message_id}\n\n"
                 "Away until Monday.\n").encode(), source="pipe")
    client.force_login(bob)
    page = body(client.get(url("letter_detail", sent_letter.campaign.slug, sent_letter.pk)))
    section = page.split('id="replies"', 1)[1]
    assert "Mail that came back" in page
    assert 'status-inbound-bounce">Bounce</span>' in section
    assert f"{sent_letter.email}</span> <code>5.1.1</code> — address gone" in section
    assert 'status-inbound-auto_reply">Auto-reply</span>' in section
    assert "Auto-Submitted: auto-replied (RFC 3834)" in section
    assert "via pipe" in section
    timeline = page.split('id="timeline"', 1)[1].split("</ol>", 1)[0]
    assert "Bounce from mailer-daemon@googlemail.com" in timeline
    assert f"Auto-reply from {sent_letter.email}" in timeline
