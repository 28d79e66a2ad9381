"""The recipient's page: signed links, isolation between letters, limits, headers, re-tests."""

import os
import uuid
from urllib.parse import urlsplit

import pytest
from django.core import signing

from campaign import states as host_states
from campaign.models import AuditEvent, Campaign, Host
from letters import batches, recipient, retest, sending, states, variants
from letters.models import InboundMessage, Letter
from probes.contacts.models import Contact
from tests.letters.conftest import add_finding
from tests.letters.helpers import approved_batch
from tests.probes import fakes

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_cache(settings):
    """The real Redis cache, under a prefix of its own so counts never leak between tests."""
    settings.CACHES = {"default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"),
        "KEY_PREFIX": f"test-{uuid.uuid4().hex}",
    }}


def path_of(letter: Letter) -> str:
    return urlsplit(letter.context["recipient_url"]).path


@pytest.fixture
def two_letters(campaign, bob, rita):
    """Two sent letters to two owners: alice.example owns two hosts, bob.example one."""
    a1 = add_finding(campaign, email="noc@alice.example", ip="198.51.100.11", language="de",
                     country="DE")
    a2 = add_finding(campaign, email="noc@alice.example", ip="198.51.100.12", language="de",
                     country="DE")
    b1 = add_finding(campaign, email="noc@bob.example", ip="203.0.113.77", language="ja",
                     country="JP")
    assert sending.send_batch(batch=approved_batch(campaign, bob, rita)).sent == 2
    alice = Letter.objects.get(email="noc@alice.example")
    bob_letter = Letter.objects.get(email="noc@bob.example")
    return alice, bob_letter, (a1, a2, b1)


def test_every_letter_carries_its_own_signed_link(two_letters):
    alice, bob_letter, _ = two_letters
    assert alice.context["recipient_url"] != bob_letter.context["recipient_url"]
    assert alice.context["recipient_url"] in alice.body_text
    assert f'href="{alice.context["recipient_url"]}"' in alice.body_html
    token = path_of(alice).split("/")[2]
    assert recipient.letter_for_token(token) == alice
    # The idempotency key alone (it is in the Message-ID) does not open the page.
    assert recipient.letter_for_token(alice.idempotency_key) is None


def test_a_token_shows_only_its_own_letters_hosts(client, two_letters):
    alice, bob_letter, _ = two_letters
    page = client.get(path_of(alice))
    assert page.status_code == 200
    body = page.content.decode()
    assert "198.51.100.11" in body and "198.51.100.12" in body
    assert "203.0.113.77" not in body and "noc@bob.example" not in body
    other = client.get(path_of(bob_letter)).content.decode()
    assert "203.0.113.77" in other and "198.51.100.11" not in other


def test_the_page_is_in_the_letters_language(client, two_letters):
    alice, bob_letter, _ = two_letters
    de = client.get(path_of(alice))
    assert de["Content-Language"] == "de" and '<html lang="de">' in de.content.decode()
    assert "Server jetzt erneut testen" in de.content.decode()
    ja = client.get(path_of(bob_letter))
    assert '<html lang="ja">' in ja.content.decode()
    assert "今すぐサーバーを再テストする" in ja.content.decode()
    en = client.get(path_of(alice) + "?lang=en")
    assert "Test my server again now" in en.content.decode()


def test_a_tampered_token_is_not_found_like_an_unknown_one(client, two_letters):
    alice, _, _ = two_letters
    token = path_of(alice).split("/")[2]
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    forged = signing.dumps(alice.idempotency_key, salt="another-salt", compress=False)
    responses = [client.get(f"/r/{t}/") for t in (tampered, forged, "nonsense")]
    assert {r.status_code for r in responses} == {404}
    assert len({r.content for r in responses}) == 1
    assert "198.51.100.11" not in responses[0].content.decode()


def test_the_link_expires_with_the_campaign(client, campaign, two_letters):
    alice, _, _ = two_letters
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.CLOSED)
    expired = client.get(path_of(alice))
    unknown = client.get("/r/nonsense/")
    assert expired.status_code == 404
    assert expired.content == unknown.content  # expired and invalid look alike
    assert "not valid or has expired" in expired.content.decode()


def test_the_page_sends_strict_security_headers(client, two_letters):
    alice, _, _ = two_letters
    for response in (client.get(path_of(alice)), client.get("/r/nonsense/")):
        csp = response["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert response["X-Robots-Tag"].startswith("noindex")
        assert response["Referrer-Policy"] == "same-origin"
        assert "no-store" in response["Cache-Control"]
    assert "<script>" not in client.get(path_of(alice)).content.decode()


def test_posts_need_the_csrf_token(two_letters):
    from django.test import Client

    alice, _, _ = two_letters
    strict = Client(enforce_csrf_checks=True)
    assert strict.post(path_of(alice) + "retest/").status_code == 403
    assert strict.post(path_of(alice) + "reply/", {"kind": "message", "text": "hi"}
                       ).status_code == 403
    assert not InboundMessage.objects.exists()


def test_retests_are_rate_limited_per_token(client, settings, two_letters):
    # The runs are queued on commit, which never comes in this test: nothing is probed.
    settings.RECIPIENT_RATE_LIMITS = {"retest_token": (2, 3600), "retest_ip": (100, 3600)}
    alice, bob_letter, _ = two_letters
    for _ in range(2):
        assert client.post(path_of(alice) + "retest/").status_code == 302
    limited = client.post(path_of(alice) + "retest/")
    assert limited.status_code == 429 and int(limited["Retry-After"]) > 0
    # Another letter's budget is its own.
    assert client.post(path_of(bob_letter) + "retest/").status_code == 302


def test_retests_are_rate_limited_per_client_address(client, settings, two_letters):
    settings.RECIPIENT_RATE_LIMITS = {"retest_token": (100, 3600), "retest_ip": (1, 3600)}
    alice, bob_letter, _ = two_letters
    assert client.post(path_of(alice) + "retest/").status_code == 302
    assert client.post(path_of(bob_letter) + "retest/").status_code == 429
    other_ip = client.post(path_of(bob_letter) + "retest/", REMOTE_ADDR="192.0.2.200")
    assert other_ip.status_code == 302


def test_a_retest_probes_only_the_letters_hosts_and_remediates_closed_ones(
        client, campaign, bob, rita, fake, probe_settings, connections,
        django_capture_on_commit_callbacks):
    from probes.verification.models import ProbeRun
    from tests.letters.test_followup import listed_relay

    relay = fake(fakes.smtp_server, host="127.0.0.91", rcpt=fakes.relay_everything)
    other = fake(fakes.smtp_server, host="127.0.0.92", rcpt=fakes.relay_nothing)
    mine = listed_relay(campaign, "127.0.0.91", relay.port, email="noc@mine.example")
    theirs = listed_relay(campaign, "127.0.0.92", other.port, email="noc@theirs.example")
    assert sending.send_batch(batch=approved_batch(campaign, bob, rita)).sent == 2
    letter = Letter.objects.get(email="noc@mine.example")

    # Still open: the host stays notified and the page says so.
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(path_of(letter) + "retest/")
    assert first.status_code == 302 and "run=" in first["Location"]
    run = ProbeRun.objects.get(reason=retest.SELF_SERVICE)
    assert run.host_ids == [mine.pk] and run.status == ProbeRun.DONE
    page = client.get(first["Location"]).content.decode()
    assert "Still open" in page or "Noch offen" in page
    mine.refresh_from_db()
    assert mine.state == host_states.NOTIFIED

    # The owner closes the relay, then presses the button again.
    relay.options["rcpt"] = fakes.relay_nothing
    with django_capture_on_commit_callbacks(execute=True):
        second = client.post(path_of(letter) + "retest/")
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.state == host_states.REMEDIATED and mine.remediated_at
    assert theirs.state == host_states.NOTIFIED  # never probed from this page
    assert "127.0.0.92" not in {host for host, _ in connections}
    done = client.get(second["Location"]).content.decode()
    assert "Thank you for securing them" in done
    event = AuditEvent.objects.get(action="host.self_service_remediated", object_id=str(mine.pk))
    assert event.data["self_reported"] is True and event.data["verified"] is True
    # The run's JSON lists this letter's host only.
    run_id = int(second["Location"].split("run=")[1].split("#")[0])
    status = client.get(f"{path_of(letter)}runs/{run_id}.json").json()
    assert status["finished"] and [h["ip"] for h in status["hosts"]] == ["127.0.0.91"]
    # Another letter's token cannot read this run.
    theirs_letter = Letter.objects.get(email="noc@theirs.example")
    assert client.get(f"{path_of(theirs_letter)}runs/{run_id}.json").status_code == 404


def test_not_my_server_lands_on_the_thread_and_flags_the_contacts(client, two_letters):
    alice, bob_letter, (a1, a2, b1) = two_letters
    response = client.post(path_of(alice) + "reply/",
                           {"kind": "not_mine", "text": "We sold this <b>range</b> in 2025."})
    assert response.status_code == 302
    reply = InboundMessage.objects.get()
    assert reply.letter == alice and reply.esp == recipient.INBOUND_ESP
    assert "We sold this <b>range</b>" in reply.text
    alice.refresh_from_db()
    assert alice.state == states.REPLIED
    flagged = set(Contact.objects.filter(review_requested_at__isnull=False)
                  .values_list("host_id", flat=True))
    assert flagged == {a1.pk, a2.pk}
    thanks = client.get(response["Location"]).content.decode()
    assert "<b>range</b>" not in thanks  # what they wrote is never echoed as HTML


def test_a_free_text_reply_lands_on_the_thread_without_flagging(client, two_letters):
    _, bob_letter, _ = two_letters
    assert client.post(path_of(bob_letter) + "reply/", {"kind": "message", "text": ""}
                       ).status_code == 400
    response = client.post(path_of(bob_letter) + "reply/",
                           {"kind": "message", "text": "Closed it, thanks."})
    assert response.status_code == 302
    assert InboundMessage.objects.get().letter == bob_letter
    assert not Contact.objects.filter(review_requested_at__isnull=False).exists()


def test_the_transcript_is_escaped(client, campaign, two_letters):
    from probes.verification.models import ProbeResult

    alice, _, (a1, _, _) = two_letters
    ProbeResult.objects.filter(host=a1).update(
        transcript="< 220 <script>alert(1)</script> ESMTP\n> EHLO probe")
    body = client.get(path_of(alice)).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body and "<script>alert" not in body


def test_a_host_list_never_includes_dropped_or_foreign_hosts(campaign, two_letters):
    alice, _, (a1, a2, b1) = two_letters
    alice.letter_hosts.filter(host=a2).update(dropped=True)
    assert [h.ip for h in recipient.page_hosts(alice)] == [a1.ip]
    Host.objects.filter(pk=b1.pk).update(state=host_states.NOTIFIED)
    assert retest.retest_candidates(alice) == [a1.pk]


def test_a_link_stops_working_after_its_maximum_age(client, settings, two_letters):
    import datetime as dt

    import time_machine

    alice, _, _ = two_letters
    settings.RECIPIENT_LINK_MAX_AGE_DAYS = 30
    assert client.get(path_of(alice)).status_code == 200
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(days=31)):
        assert client.get(path_of(alice)).status_code == 404


def test_a_letter_that_never_left_has_no_page(client, campaign, bob):
    add_finding(campaign, email="noc@draft.example")
    letter = batches.build_batch(campaign=campaign, actor=bob).letters.get()
    assert letter.state == states.DRAFT and letter.context["recipient_url"]
    assert client.get(path_of(letter)).status_code == 404


def test_staff_see_the_reply_and_the_flag_on_the_letters_thread(client, campaign, bob,
                                                                 two_letters):
    from django.test import Client

    alice, _, (a1, _, _) = two_letters
    client.post(path_of(alice) + "reply/", {"kind": "not_mine", "text": "Wrong network."})
    staff = Client()
    staff.force_login(bob)
    page = staff.get(f"/c/{campaign.slug}/letters/{alice.pk}/").content.decode()
    assert "[recipient page] This is not my server / wrong contact" in page
    assert "Wrong network." in page
    assert "Contact flagged for review by the recipient" in page
    host_page = staff.get(f"/c/{campaign.slug}/hosts/{a1.ip}/").content.decode()
    assert "Needs review: the recipient said" in host_page


# --- issue 14, point 10: what the page says fits the finding, in the recipient's words ------

RELAY_QUESTION = "Does your mail server accept mail from untrusted networks"
PROXY_QUESTION = "Does your proxy allow connections from untrusted networks"


def _page(client, campaign, bob, rita, findings, language="en"):
    for kwargs in findings:
        add_finding(campaign, email="noc@one.example", language=language, **kwargs)
    assert sending.send_batch(batch=approved_batch(campaign, bob, rita)).sent == 1
    letter = Letter.objects.get(email="noc@one.example")
    response = client.get(path_of(letter))
    assert response.status_code == 200
    return response.content.decode()


def test_a_relay_letter_asks_the_relay_questions_not_the_proxy_ones(client, campaign, bob,
                                                                    rita):
    page = _page(client, campaign, bob, rita, [{"check": "smtp_relay"}])
    assert RELAY_QUESTION in page and PROXY_QUESTION not in page
    assert page.count('data-kind="relay"') == 1


def test_a_proxy_letter_asks_the_proxy_questions(client, campaign, bob, rita):
    page = _page(client, campaign, bob, rita, [{"check": "http_proxy", "port": 8080,
                                                "variant": "get,connect"}])
    assert PROXY_QUESTION in page and RELAY_QUESTION not in page


def test_a_letter_about_both_kinds_asks_both_sets(client, campaign, bob, rita):
    page = _page(client, campaign, bob, rita, [{"check": "smtp_relay"},
                                               {"check": "socks5", "port": 1080,
                                                "variant": "socks5"}])
    assert RELAY_QUESTION in page and PROXY_QUESTION in page
    assert "For your mail servers" in page and "For your proxies" in page


@pytest.mark.parametrize("check,variant", [
    (check, variant)
    for variant in ("plain", "empty_sender", "ip_literal", "source_route", "percent_hack",
                    "bang_path", "quoted_local", "percent_hack_bare", "bang_path_bare",
                    "quoted_local_bare", "control_local", "control_bare")
    for check in ("smtp_relay",)
] + [("http_proxy", "get"), ("http_proxy", "connect"), ("http_proxy", "get,connect"),
     ("socks4", "socks4"), ("socks4", "socks4a"), ("socks5", "socks5")])
def test_no_internal_variant_code_reaches_the_recipient(client, campaign, bob, rita, check,
                                                        variant):
    """Every variant the probes report (smtp.relay_variants, proxy.py) is a sentence or
    nothing, never its code; and in the recipient's language."""
    page = _page(client, campaign, bob, rita, [{"check": check, "variant": variant}],
                 language="de")
    table = page.split('class="r-evidence"')[1].split("</table>")[0]
    for code in variant.split(","):
        assert code not in table
    assert f"({variant})" not in page
    if not variant.startswith("control"):
        assert variants.variant_sentences(variant)
        assert 'class="r-muted r-variant">Er hat' in table  # German, not English


def test_the_variant_sentences_cover_every_variant_the_probes_produce():
    from probes.verification.base import ProbeConfig
    from probes.verification.smtp import relay_variants

    config = ProbeConfig(canary_domain="canary.test", canary_host="192.0.2.9")
    codes = {v.name for v in relay_variants("192.0.2.1", config, "t")}
    codes |= {"get", "connect", "socks4", "socks4a", "socks5"}
    missing = {code for code in codes if not code.startswith("control")
               and not variants.variant_sentences(code)}
    assert not missing


def test_a_retest_result_is_shown_once(client, campaign, bob, rita, fake, probe_settings,
                                       connections, django_capture_on_commit_callbacks):
    from tests.letters.test_followup import listed_relay

    relay = fake(fakes.smtp_server, host="127.0.0.93", rcpt=fakes.relay_everything)
    listed_relay(campaign, "127.0.0.93", relay.port, email="noc@once.example")
    assert sending.send_batch(batch=approved_batch(campaign, bob, rita)).sent == 1
    letter = Letter.objects.get(email="noc@once.example")
    with django_capture_on_commit_callbacks(execute=True):
        still = client.post(path_of(letter) + "retest/")
    result = client.get(still["Location"]).content.decode().split('id="retest-result"')[1]
    result = result.split("</div>")[0]
    assert result.count("127.0.0.93") == 1 and result.count("Still open") == 1
    relay.options["rcpt"] = fakes.relay_nothing
    with django_capture_on_commit_callbacks(execute=True):
        closed = client.post(path_of(letter) + "retest/")
    result = client.get(closed["Location"]).content.decode().split('id="retest-result"')[1]
    result = result.split("</div>")[0]
    assert result.count("Thank you") == 1 and "Closed — thank you!" not in result


@pytest.mark.parametrize("country,zone", [("JP", "Asia/Tokyo"), ("DE", "Europe/Berlin"),
                                          ("US", "America/New_York"), ("ES", "Europe/Madrid"),
                                          ("BR", "America/Sao_Paulo"), ("FR", "Europe/Paris")])
def test_the_time_zone_suggested_is_the_contacts_countrys(client, campaign, bob, rita,
                                                          country, zone):
    page = _page(client, campaign, bob, rita, [{"country": country}], language="ja")
    field = page.split('id="time-zone"')[1].split(">")[0]
    assert f'placeholder="{zone}"' in field
    assert 'value=""' in field  # a suggestion, not a choice made for them


def test_without_a_country_the_suggestion_comes_from_the_contact(client, campaign, bob, rita):
    host = add_finding(campaign, email="noc@one.example", language="ja", country="JP")
    Host.objects.filter(pk=host.pk).update(country="")
    assert sending.send_batch(batch=approved_batch(campaign, bob, rita)).sent == 1
    page = client.get(path_of(Letter.objects.get(email="noc@one.example"))).content.decode()
    assert 'placeholder="Asia/Tokyo"' in page
