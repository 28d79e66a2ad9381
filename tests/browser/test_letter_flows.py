"""Letters in real headless Chromium: staff build a batch from hosts with resolved contacts,
preview it beside English and submit it; a different user approves it; staff send it and the
letters land in Django's outbox. An admin who built a batch cannot approve it, in the page or
by posting the form by hand. Contacts are resolved against loopback registries and set by hand."""

import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from campaign import states as host_states
from campaign.models import Host
from letters import batches, states
from letters.models import Batch, Letter
from tests.browser.conftest import login, logout, screenshot
from tests.contacts import conftest as contacts_fixtures
from tests.letters import conftest as letters_fixtures

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Compiled catalogs, the agency with its letterhead, an admin, and hosts verified open with a
# resolved contact, made as the pipeline leaves them (Host, Contact, open ProbeResult rows).
compiled_translations = letters_fixtures.compiled_translations
agency = letters_fixtures.agency
ada = letters_fixtures.ada
finding = letters_fixtures.finding


@pytest.fixture
def contacts(finding):
    return {
        "ja": finding(email="noc@isp.jp.example", language="ja", country="JP"),
        "bg": finding(email="abuse@isp.bg.example", language="bg", country="BG"),
        "de": finding(email="abuse@isp.de.example", language="de", country="DE",
                      check="http_proxy", port=8080, variant="connect"),
    }


def test_staff_build_a_batch_a_reviewer_approves_it_and_the_letters_are_sent(
    page, campaign, bob, rita, contacts, mailoutbox
):
    login(page, "bob")
    page.goto(f"/c/{campaign.slug}/")
    letters_card = page.locator("#letters")
    expect(letters_card).to_contain_text("No batch of letters yet.")
    letters_card.get_by_role("link", name="Build batch").click()
    expect(page.get_by_role("heading", name="Build a batch of letters")).to_be_visible()
    page.get_by_label("Letter language").select_option("")
    page.get_by_role("button", name="Build batch").click()

    page.wait_for_url(re.compile(r"/batches/\d+/$"))
    batch = Batch.objects.get()
    expect(page.locator("#batch-state")).to_have_text("Draft")
    rows = page.locator("#letters tbody tr")
    expect(rows).to_have_count(3)
    japanese = page.locator("tr[data-email='noc@isp.jp.example']")
    expect(japanese).to_contain_text("日本語 (ja)")
    expect(japanese).to_contain_text(contacts["ja"].ip)
    expect(page.get_by_role("button", name="Approve batch")).to_have_count(0)
    screenshot(page, "batch-draft")

    japanese.get_by_role("link", name=re.compile("^Preview letter")).click()
    local = page.locator("#preview-local")
    english = page.locator("#preview-en")
    expect(local).to_have_attribute("lang", "ja")
    expect(local.locator("[data-field='subject']")).not_to_be_empty()
    expect(english.get_by_role("heading", name="English, for review")).to_be_visible()
    # The HTML parts render inside sandboxed frames, each in its own language.
    local_frame = page.frame_locator("#preview-local iframe")
    expect(local_frame.locator("body")).to_contain_text("オープンメールリレー")
    expect(local_frame.locator("body")).to_contain_text(contacts["ja"].ip)
    expect(page.frame_locator("#preview-en iframe").locator("body")).to_contain_text(
        "Dear network administrator")
    assert local.locator("iframe").get_attribute("sandbox") == ""
    screenshot(page, "letter-preview")

    page.get_by_role("link", name=f"Batch #{batch.pk}").click()
    page.get_by_role("button", name="Submit for review").click()
    expect(page.locator("#batch-state")).to_have_text("Awaiting review")
    expect(page.get_by_role("button", name="Approve batch")).to_have_count(0)
    logout(page)

    login(page, "rita")
    page.get_by_role("link", name="Review queue").click()
    row = page.locator(f"#review-queue tr[data-batch='{batch.pk}']")
    expect(row).to_contain_text("bob")
    expect(row).to_contain_text("ja × 1")
    screenshot(page, "review-queue")
    row.get_by_role("link", name=f"Batch #{batch.pk}").click()
    page.get_by_label("Comment (optional)").fill("Read all three; the Japanese one too.")
    page.get_by_role("button", name="Approve batch").click()
    expect(page.locator("#batch-state")).to_have_text("Approved")
    expect(page.get_by_role("status").first).to_contain_text("approved")
    # Reviewers approve; staff send.
    expect(page.get_by_role("button", name=re.compile("^Send"))).to_have_count(0)
    assert mailoutbox == []
    logout(page)

    login(page, "bob")
    page.goto(f"/c/{campaign.slug}/batches/{batch.pk}/")
    page.get_by_label("I confirm sending 3 letters to 3 recipients").check()
    page.get_by_role("button", name="Send 3 letters").click()
    expect(page.locator("#batch-state")).to_have_text("Sent")
    expect(page.locator("#batch-progress .lcount-sent dd")).to_have_text("3")
    screenshot(page, "batch-sent")

    assert sorted(m.to[0] for m in mail.outbox) == [
        "abuse@isp.bg.example", "abuse@isp.de.example", "noc@isp.jp.example"]
    japanese_mail = next(m for m in mail.outbox if m.to == ["noc@isp.jp.example"])
    assert "オープンメールリレー" in japanese_mail.body
    assert set(Letter.objects.values_list("state", flat=True)) == {states.SENT}
    assert set(Host.objects.values_list("state", flat=True)) == {host_states.NOTIFIED}

    page.get_by_role("link", name="Letters").first.click()
    expect(page.locator("#letters tbody tr")).to_have_count(3)
    expect(page.locator("#letters .lstate-sent")).to_have_count(3)
    page.locator("tr[data-email='abuse@isp.bg.example']").get_by_role(
        "link", name=re.compile(r"^Letter #\d+$")).click()
    expect(page.locator("#letter-state")).to_have_text("Sent")
    expect(page.locator("#timeline")).to_contain_text("Batch approved")
    expect(page.locator("#timeline")).to_contain_text("by rita")
    screenshot(page, "letter-detail")

    page.goto(f"/c/{campaign.slug}/")
    expect(page.locator(f"#batches tr[data-batch='{batch.pk}']")).to_contain_text("Sent")
    expect(page.locator("#letters .lcount-sent dd")).to_have_text("3")
    screenshot(page, "campaign-detail-letters")


def test_an_admin_cannot_approve_the_batch_they_built(page, campaign, ada, contacts):
    batch = batches.build_batch(campaign=campaign, actor=ada)
    batches.submit_batch(batch=batch, actor=ada)
    login(page, "ada")
    page.get_by_role("link", name="Review queue").click()
    expect(page.locator(f"tr[data-batch='{batch.pk}']")).to_contain_text("yours")
    page.goto(f"/c/{campaign.slug}/batches/{batch.pk}/")
    expect(page.locator("#four-eyes-note")).to_contain_text("you cannot approve it")
    expect(page.get_by_role("button", name="Approve batch")).to_have_count(0)
    expect(page.get_by_role("button", name="Reject batch")).to_be_visible()
    screenshot(page, "batch-four-eyes")

    # Posting the approval by hand, with a valid session and CSRF token, is refused too.
    with page.expect_navigation() as navigation:
        page.evaluate("""(action) => {
            const form = document.createElement("form");
            form.method = "post";
            form.action = action;
            const token = document.querySelector("input[name=csrfmiddlewaretoken]").cloneNode();
            form.appendChild(token);
            document.body.appendChild(form);
            form.submit();
        }""", f"/c/{campaign.slug}/batches/{batch.pk}/approve/")
    assert navigation.value.status == 403
    expect(page.locator("#batch-error")).to_contain_text("cannot approve it")
    expect(page.locator("#batch-state")).to_have_text("Awaiting review")
    batch.refresh_from_db()
    assert batch.state == states.SUBMITTED and batch.reviewed_by is None


def test_the_letter_pages_fit_a_narrow_screen(phone_page, campaign, bob, contacts):
    batch = batches.build_batch(campaign=campaign, actor=bob)
    letter = batch.letters.get(language="bg")
    login(phone_page, "bob")
    for path, name in [
        (f"/c/{campaign.slug}/batches/{batch.pk}/", "batch-draft-phone"),
        (f"/c/{campaign.slug}/letters/{letter.pk}/preview/", "letter-preview-phone"),
        (f"/c/{campaign.slug}/hosts/{contacts['bg'].ip}/", "host-contact-phone"),
    ]:
        phone_page.goto(path)
        overflow = phone_page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px"
        screenshot(phone_page, name)


# --- contacts ------------------------------------------------------------------------------

loopback = contacts_fixtures.loopback
rdap_fake = contacts_fixtures.rdap_fake
whois_fake = contacts_fixtures.whois_fake
registries = contacts_fixtures.registries


def test_an_analyst_resolves_contacts_and_staff_override_one(page, campaign, alice, bob,
                                                             registries):
    Host.objects.create(campaign=campaign, ip="82.44.79.141", state=host_states.VERIFIED_OPEN)
    Host.objects.create(campaign=campaign, ip="179.231.41.242",
                        state=host_states.VERIFIED_OPEN)
    login(page, "alice")
    page.goto(f"/c/{campaign.slug}/")
    card = page.locator("#contact-runs")
    expect(card).to_contain_text("No contact resolution yet.")
    card.get_by_label("Hosts to resolve").select_option("pending")
    card.get_by_role("button", name="Resolve contacts").click()
    page.wait_for_url(re.compile(r"/contacts/\d+/$"))
    box = page.locator("#contact-progress")
    expect(box.locator("[data-field='status_label']")).to_have_text("Done")
    expect(box.locator("[data-field='summary']")).to_have_text(
        "hosts=2 resolved=2 failed=0 queries=2")
    screenshot(page, "contact-run-done")
    logout(page)

    login(page, "bob")
    page.goto(f"/c/{campaign.slug}/hosts/179.231.41.242/")
    contact = page.locator("#contact")
    expect(contact.locator("[data-field='contact-email']")).to_have_text(
        "abuse@conectividad-andina.example")
    expect(contact.locator("[data-field='contact-source']")).to_contain_text("RDAP")
    expect(contact.locator("[data-field='contact-network']")).to_contain_text("179.231.40.0/22")
    expect(contact.locator("[data-field='contact-confidence']")).to_have_text(
        "High (abuse role)")
    expect(contact.locator("[data-field='contact-language']")).to_contain_text("Español (es)")
    contact.get_by_label("Abuse contact e-mail").fill("noc@conectividad-andina.example")
    contact.get_by_label("Letter language").select_option("pt-BR")
    contact.get_by_label("Reason").fill("The operator asked us to write to its NOC.")
    contact.get_by_role("button", name="Set contact").click()
    expect(page.get_by_role("status").first).to_contain_text(
        "set to noc@conectividad-andina.example")
    expect(contact.locator("[data-field='contact-source']")).to_have_text("Set by hand")
    expect(contact.locator("[data-field='contact-language']")).to_contain_text(
        "Português (Brasil) (pt-BR)")
    expect(contact).to_contain_text("Set by hand by bob")
    screenshot(page, "host-contact-override")
