"""Partner agencies: a joint campaign routes each host to the agency whose jurisdiction covers
it, each agency builds, reviews and sends its own letters, and every staff page, list and
export shows an agency its own rows only (staff of an agency outside the campaign: 404)."""

import io
import json
from types import SimpleNamespace

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.core.management import CommandError, call_command
from django.urls import URLPattern, reverse
from django.utils import timezone

from campaign import agencies, web_urls
from campaign import states as host_states
from campaign.models import Agency, Campaign, Feed, FeedImport, FeedSubscription, Host
from campaign.services import create_campaign, visible_campaigns
from letters import batches, sending, states
from letters.models import Batch, Letter
from probes.contacts.models import ContactRun
from probes.verification.models import ProbeRun
from tests.conftest import make_user
from tests.letters import conftest as letters_fixtures
from tests.letters.conftest import add_finding

pytestmark = pytest.mark.django_db

compiled_translations = letters_fixtures.compiled_translations

LEAD = "Federal Trade Commission"
PARTNER = "Bundesnetzagentur"
OUTSIDER = "Commission Nationale"


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def world(db):
    """A joint campaign led by the FTC (US) with the Bundesnetzagentur (DE, AT) as partner,
    and a third agency (FR) with a campaign of its own; each agency has an admin and a
    builder; each of the two participants has built a batch of its own hosts."""
    lead = Agency.objects.create(
        name=LEAD, country="US", jurisdiction=["US"], sender_email="sys@ftc.example",
        reply_to="answers@ftc.example", letterhead="FEDERAL TRADE COMMISSION",
        signature="Operation Secure Your Server, FTC", info_url="https://www.ftc.example/sys")
    partner = Agency.objects.create(
        name=PARTNER, country="DE", jurisdiction=["DE", "AT"], sender_email="sys@bnetza.example",
        reply_to="antwort@bnetza.example", letterhead="BUNDESNETZAGENTUR",
        signature="Ihre Bundesnetzagentur", info_url="https://www.bnetza.example/sys")
    outsider = Agency.objects.create(name=OUTSIDER, country="FR", jurisdiction=["FR"])
    joint = create_campaign(slug="joint-2026", agency_name=LEAD)
    joint.partners.add(partner)
    own = create_campaign(slug="cn-2026", agency_name=OUTSIDER)
    hosts = SimpleNamespace(
        us=add_finding(joint, email="abuse@isp.us.example", country="US"),
        de=add_finding(joint, email="abuse@isp.de.example", country="DE", language="de"),
        # No country of its own: routed by its contact's country (Austria → the partner).
        at=add_finding(joint, email="noc@isp.at.example", country="AT", language="de"),
        # No participant covers Japan or France: both go to the lead.
        jp=add_finding(joint, email="noc@isp.jp.example", country="JP", language="ja"),
        fr=add_finding(joint, email="abuse@isp.fr.example", country="FR", language="fr"),
    )
    Host.objects.filter(pk=hosts.at.pk).update(country="")
    users = SimpleNamespace(
        a=make_user("amy", "admin", LEAD), a_builder=make_user("abe", "staff", LEAD),
        b=make_user("bea", "admin", PARTNER), b_builder=make_user("ben", "staff", PARTNER),
        c=make_user("cal", "admin", OUTSIDER), c_builder=make_user("cid", "staff", OUTSIDER),
    )
    a_batch = batches.build_batch(campaign=joint, actor=users.a_builder)
    b_batch = batches.build_batch(campaign=joint, actor=users.b_builder)
    feed_import = FeedImport.objects.create(
        campaign=joint, feed=Feed.objects.create(name="cbl"), source="cbl.txt", kind=1,
        status=FeedImport.DONE)
    return SimpleNamespace(
        lead=lead, partner=partner, outsider=outsider, joint=joint, own=own, hosts=hosts,
        users=users, a_batch=a_batch, b_batch=b_batch,
        a_letter=a_batch.letters.order_by("id").first(),
        b_letter=b_batch.letters.order_by("id").first(),
        feed_import=feed_import,
        subscription=FeedSubscription.objects.create(
            campaign=joint, url="https://feeds.example/relays.txt", interval_seconds=3600),
        probe_run=ProbeRun.objects.get(campaign=joint),
        contact_run=ContactRun.objects.create(campaign=joint, status=ContactRun.DONE),
    )


# --- routing and building ------------------------------------------------------------------


def test_each_host_goes_to_the_agency_whose_jurisdiction_covers_it(world):
    route = agencies.router(world.joint)
    assert route.route("US") == world.lead.pk
    assert route.route("de") == world.partner.pk and route.route("AT") == world.partner.pk
    assert route.route("JP") == world.lead.pk and route.route("") == world.lead.pk
    # France is the outsider's jurisdiction, but the outsider takes no part: the lead's.
    assert route.route("FR") == world.lead.pk
    h = world.hosts
    assert set(agencies.routed_hosts(world.joint, world.partner)) == {h.de, h.at}
    assert set(agencies.routed_hosts(world.joint, world.lead)) == {h.us, h.jp, h.fr}
    assert not agencies.routed_hosts(world.joint, world.outsider).exists()


def test_a_country_two_participants_claim_goes_to_the_lead(world):
    world.lead.jurisdiction = ["US", "DE"]
    world.lead.save(update_fields=["jurisdiction"])
    world.joint.refresh_from_db()
    assert agencies.router(world.joint).route("DE") == world.lead.pk
    assert set(agencies.routed_hosts(world.joint, world.partner)) == {world.hosts.at}


def test_each_agency_builds_a_batch_of_its_own_hosts_with_its_own_letterhead(world):
    a_ips = {lh.host.ip for lh in world.a_batch.letters.get(email="abuse@isp.us.example")
             .letter_hosts.all()}
    assert a_ips == {world.hosts.us.ip}
    assert world.a_batch.agency == world.lead and world.b_batch.agency == world.partner
    assert set(world.a_batch.letters.values_list("email", flat=True)) == {
        "abuse@isp.us.example", "noc@isp.jp.example", "abuse@isp.fr.example"}
    assert set(world.b_batch.letters.values_list("email", flat=True)) == {
        "abuse@isp.de.example", "noc@isp.at.example"}
    b_letter = world.b_batch.letters.get(email="abuse@isp.de.example")
    assert b_letter.context["agency"]["sender_email"] == "sys@bnetza.example"
    assert "BUNDESNETZAGENTUR" in b_letter.body_text
    assert "Ihre Bundesnetzagentur" in b_letter.body_text
    assert "https://www.bnetza.example/sys" in b_letter.body_text
    assert "FEDERAL TRADE COMMISSION" not in b_letter.body_text
    assert b_letter.message_id.endswith("@bnetza.example>")
    # Nothing is left for either agency: each host is in exactly one live letter.
    again = batches.build_batch(campaign=world.joint, actor=world.users.b_builder)
    assert again.letters.count() == 0


def test_letters_leave_with_the_sender_and_reply_to_of_the_agency_that_wrote_them(world):
    u = world.users
    for batch, builder, reviewer in ((world.a_batch, u.a_builder, u.a),
                                     (world.b_batch, u.b_builder, u.b)):
        batches.submit_batch(batch=batch, actor=builder)
        batches.approve_batch(batch=batch, actor=reviewer)
        assert sending.send_batch(batch=batch, actor=builder, sleep=lambda s: None).sent
    senders = {m.to[0]: (m.from_email, m.reply_to) for m in mail.outbox}
    assert senders["abuse@isp.de.example"] == (f"{PARTNER} <sys@bnetza.example>",
                                               ["antwort@bnetza.example"])
    assert senders["noc@isp.at.example"][0] == f"{PARTNER} <sys@bnetza.example>"
    assert senders["abuse@isp.us.example"] == (f"{LEAD} <sys@ftc.example>",
                                               ["answers@ftc.example"])
    assert senders["noc@isp.jp.example"][0] == f"{LEAD} <sys@ftc.example>"
    Host.objects.filter(pk=world.hosts.de.pk).update(state=host_states.REMEDIATED,
                                                     remediated_at=timezone.now())
    report = agencies.operation_summary()
    rows = {r["agency"]: r for r in report["agencies"]}
    assert rows[PARTNER] == {"agency": PARTNER, "campaigns": ["joint-2026"], "hosts_routed": 2,
                             "notified": 2, "remediated": 1}
    assert rows[LEAD]["hosts_routed"] == 3 and rows[LEAD]["notified"] == 3
    assert rows[OUTSIDER] == {"agency": OUTSIDER, "campaigns": ["cn-2026"], "hosts_routed": 0,
                              "notified": 0, "remediated": 0}
    assert report["total"] == {"hosts_routed": 5, "notified": 5, "remediated": 1}
    # The per-agency campaign report counts each agency's own letters only.
    csv_b = run("campaign_report", "joint-2026", "--csv", "--agency", PARTNER)
    # The Austrian host has no country of its own: it is reported under its contact's.
    assert csv_b.splitlines()[1:] == ["AT,de,1,0,0,0,0,0.0,", "DE,de,1,0,0,0,1,1.0,0.0",
                                      "all,all,2,0,0,0,1,0.5,0.0"]
    csv_a = run("campaign_report", "joint-2026", "--csv", "--agency", LEAD)
    assert [line.split(",")[0] for line in csv_a.splitlines()[1:]] == ["FR", "JP", "US", "all"]
    whole = run("campaign_report", "joint-2026", "--csv")
    assert whole.splitlines()[-1].startswith("all,all,5,")
    with pytest.raises(CommandError, match="takes no part"):
        run("campaign_report", "joint-2026", "--agency", OUTSIDER)


def test_an_agency_reviews_and_sends_only_its_own_batches(world):
    u = world.users
    batches.submit_batch(batch=world.a_batch, actor=u.a_builder)
    with pytest.raises(PermissionDenied, match="another agency"):
        batches.approve_batch(batch=world.a_batch, actor=u.b)
    with pytest.raises(CommandError, match="another agency"):
        run("letters_batch", "approve", str(world.a_batch.pk), "--by", "bea")
    with pytest.raises(PermissionDenied):
        batches.submit_batch(batch=world.b_batch, actor=u.a_builder)
    with pytest.raises(PermissionDenied, match="takes no part"):
        batches.build_batch(campaign=world.joint, actor=u.c_builder)
    world.a_batch.refresh_from_db()
    world.b_batch.refresh_from_db()
    assert (world.a_batch.state, world.b_batch.state) == (states.SUBMITTED, states.DRAFT)
    assert run("letters_batch", "approve", str(world.a_batch.pk), "--by", "amy").strip() == (
        f"batch={world.a_batch.pk} state=approved")


def test_staff_see_the_campaigns_their_agency_leads_or_joins(world):
    u = world.users
    assert list(visible_campaigns(u.a).values_list("slug", flat=True)) == ["joint-2026"]
    assert list(visible_campaigns(u.b).values_list("slug", flat=True)) == ["joint-2026"]
    assert list(visible_campaigns(u.c).values_list("slug", flat=True)) == ["cn-2026"]


# --- the permission matrix -----------------------------------------------------------------

A, B, C = "A", "B", "C"
LEAD_ONLY = {"import_create", "probe_run_start", "contact_run_start", "feed_action",
             "campaign_automation"}


def _routes(w):
    """(url name, method, owner, args): every staff URL with real objects of each agency.

    owner: "all" (lists every agency may open), "campaign" (the joint campaign's shared
    pages), A or B (a batch or letter of that agency), "host:A"/"host:B" (a host routed so).
    """
    slug = w.joint.slug
    rows = [
        ("campaign_list", "get", "all", ()), ("campaign_create", "get", "all", ()),
        ("review_queue", "get", "all", ()),
        ("api_tokens", "get", "all", ()),
        ("api_token_revoke", "post", "nobody", (987654,)),  # nobody's token: 404 for all
        ("suppression_list", "get", "all", ()),
        ("campaign_detail", "get", "campaign", (slug,)),
        ("import_create", "get", "campaign", (slug,)),
        ("import_detail", "get", "campaign", (slug, w.feed_import.pk)),
        ("import_status", "get", "campaign", (slug, w.feed_import.pk)),
        ("campaign_automation", "post", "campaign", (slug,)),
        ("feed_list", "get", "campaign", (slug,)),
        ("feed_detail", "get", "campaign", (slug, w.subscription.pk)),
        ("feed_action", "post", "campaign", (slug, w.subscription.pk)),
        ("probe_run_start", "get", "campaign", (slug,)),
        ("probe_run_detail", "get", "campaign", (slug, w.probe_run.pk)),
        ("probe_run_status", "get", "campaign", (slug, w.probe_run.pk)),
        ("contact_run_start", "get", "campaign", (slug,)),
        ("contact_run_detail", "get", "campaign", (slug, w.contact_run.pk)),
        ("contact_run_status", "get", "campaign", (slug, w.contact_run.pk)),
        ("host_list", "get", "campaign", (slug,)),
        ("letter_list", "get", "campaign", (slug,)),
        ("deliverability", "get", "campaign", (slug,)),
        ("batch_create", "get", "campaign", (slug,)),
        # Agencies and templates (admin role): each agency sees its own settings only.
        ("agency_list", "get", "all", ()),
        ("agency_settings", "get", A, (w.lead.pk,)),
        ("agency_settings", "get", B, (w.partner.pk,)),
        ("template_edit", "get", "all", ("first_notice.subject.txt",)),
        ("template_preview", "post", "all", ("first_notice.subject.txt",)),
    ]
    for host, owner in ((w.hosts.us, "host:A"), (w.hosts.de, "host:B"), (w.hosts.at, "host:B")):
        rows.append(("host_detail", "get", "campaign", (slug, host.ip)))
        rows.append(("contact_set", "get", owner, (slug, host.ip)))
    for owner, batch, letter in ((A, w.a_batch, w.a_letter), (B, w.b_batch, w.b_letter)):
        rows += [
            ("batch_detail", "get", owner, (slug, batch.pk)),
            ("batch_status", "get", owner, (slug, batch.pk)),
            ("letter_detail", "get", owner, (slug, letter.pk)),
            ("letter_preview", "get", owner, (slug, letter.pk)),
            # Approve before submit: a person who submitted may not approve (four eyes),
            # which would be a 403 of another kind.
            ("batch_approve", "post", owner, (slug, batch.pk)),
            ("batch_reject", "post", owner, (slug, batch.pk)),
            ("batch_submit", "post", owner, (slug, batch.pk)),
            ("batch_send", "post", owner, (slug, batch.pk)),
            ("letter_remove", "post", owner, (slug, letter.pk)),
            # Postal letters: a draft batch is not printed (409 for its own agency).
            ("batch_print", "get", owner, (slug, batch.pk)),
            ("batch_addresses", "get", owner, (slug, batch.pk)),
            ("batch_posted", "post", owner, (slug, batch.pk)),
            ("letter_returned", "post", owner, (slug, letter.pk)),
            # An e-mail has no printed form: 404 for everyone (tests/test_access_matrix.py
            # opens a postal letter's).
            ("letter_pdf", "get", owner, (slug, letter.pk)),
        ]
    return rows


def _expected(name: str, owner: str, who: str):
    """200 (a page), "acts" (a POST that is let through), 403 or 404."""
    if owner == "all":
        return 200
    if owner == "nobody":
        return 404
    if who == C:
        return 404  # the campaign does not exist for an agency outside it
    if owner in (A, B):
        if who != owner or name == "letter_pdf":
            return 404
        return 200 if name not in POSTS else "acts"
    if owner.startswith("host:"):
        return 200 if who == A or owner == f"host:{who}" else 403
    if name in LEAD_ONLY and who == B:
        return 403
    return "acts" if name in POSTS else 200


POSTS = {"feed_action", "campaign_automation", "batch_submit", "batch_approve",
         "batch_reject", "batch_send", "letter_remove", "batch_print", "batch_addresses",
         "batch_posted", "letter_returned"}


def test_the_matrix_names_every_staff_url(world):
    named = {p.name for p in web_urls.urlpatterns if isinstance(p, URLPattern)}
    assert named == {row[0] for row in _routes(world)}


@pytest.mark.parametrize("who", [A, B, C])
def test_every_staff_url_answers_each_agency_as_it_should(client, world, who):
    user = {A: world.users.a, B: world.users.b, C: world.users.c}[who]
    client.force_login(user)
    before = {b.pk: b.state for b in Batch.objects.all()}
    checked = []
    for name, method, owner, args in _routes(world):
        path = reverse(name, args=args)
        response = getattr(client, method)(path)
        want = _expected(name, owner, who)
        got = response.status_code
        if want == "acts":
            assert got not in (403, 404), (name, path, who, got)
        else:
            assert got == want, (name, path, who, got)
        checked.append((name, got))
    assert len(checked) == len(_routes(world))
    # Refused POSTs changed nothing: the other agency's batch is as it was.
    for batch in Batch.objects.all():
        mine = {A: world.lead, B: world.partner}.get(who)
        if batch.agency != mine:
            assert batch.state == before[batch.pk], batch


# --- lists never show another agency's rows ------------------------------------------------


def _page(client, name, *args) -> str:
    response = client.get(reverse(name, args=args))
    assert response.status_code == 200
    return response.content.decode()


def _letter_links(page: str, slug: str) -> set[int]:
    return {letter.pk for letter in Letter.objects.all()
            if f"/c/{slug}/letters/{letter.pk}/" in page}


def test_letter_lists_show_each_agency_its_own_letters_only(client, world):
    slug = world.joint.slug
    a_ids = set(world.a_batch.letters.values_list("pk", flat=True))
    b_ids = set(world.b_batch.letters.values_list("pk", flat=True))
    for user, mine in ((world.users.a, a_ids), (world.users.b, b_ids)):
        client.force_login(user)
        page = _page(client, "letter_list", slug)
        assert _letter_links(page, slug) == mine
        others = b_ids if mine == a_ids else a_ids
        emails = set(Letter.objects.filter(pk__in=others).values_list("email", flat=True))
        assert not any(email in page for email in emails)


def test_an_agencys_letters_are_picked_by_its_batch_ids_not_through_a_join(world):
    """Counting and paging them then reads the (batch, state) index only: the join through
    the batch read the whole letter table, twice per letters page (bench/load_bench.py)."""
    from letters import pages

    for user, mine in ((world.users.a, world.a_batch), (world.users.b, world.b_batch)):
        letters = pages.visible_letters(world.joint, user)
        assert set(letters.values_list("pk", flat=True)) == set(
            mine.letters.values_list("pk", flat=True))
        sql = str(letters.query)
        assert 'FROM "letters_letter" WHERE "letters_letter"."batch_id" IN (SELECT' in sql, sql


def test_the_campaign_page_shows_each_agency_its_own_batches_and_counts(client, world):
    slug = world.joint.slug
    for user, mine, theirs in ((world.users.a, world.a_batch, world.b_batch),
                               (world.users.b, world.b_batch, world.a_batch)):
        client.force_login(user)
        page = _page(client, "campaign_detail", slug)
        assert f"/c/{slug}/batches/{mine.pk}/" in page
        assert f"/c/{slug}/batches/{theirs.pk}/" not in page
        response = client.get(reverse("campaign_detail", args=[slug]))
        assert response.context["letters_total"] == mine.letters.count()


def test_a_host_page_shows_only_the_viewers_letters_about_it(client, world):
    slug, ip = world.joint.slug, world.hosts.de.ip
    b_letter = world.b_batch.letters.get(email="abuse@isp.de.example")
    client.force_login(world.users.b)
    assert f"/c/{slug}/letters/{b_letter.pk}/" in _page(client, "host_detail", slug, ip)
    client.force_login(world.users.a)
    page = _page(client, "host_detail", slug, ip)
    assert f"/c/{slug}/letters/{b_letter.pk}/" not in page
    assert "No letter about this host yet." in page


def test_the_review_queue_holds_only_the_reviewers_agencys_batches(client, world):
    batches.submit_batch(batch=world.a_batch, actor=world.users.a_builder)
    batches.submit_batch(batch=world.b_batch, actor=world.users.b_builder)
    for user, mine, theirs in ((world.users.a, world.a_batch, world.b_batch),
                               (world.users.b, world.b_batch, world.a_batch)):
        client.force_login(user)
        response = client.get(reverse("review_queue"))
        assert [e.batch.pk for e in response.context["entries"]] == [mine.pk]
        assert f"/batches/{theirs.pk}/" not in response.content.decode()
    client.force_login(world.users.c)
    assert client.get(reverse("review_queue")).context["entries"] == []


def test_the_campaign_list_shows_joint_campaigns_to_partners_and_hides_them_from_others(
        client, world):
    for user, shown, hidden in ((world.users.a, "joint-2026", "cn-2026"),
                                (world.users.b, "joint-2026", "cn-2026"),
                                (world.users.c, "cn-2026", "joint-2026")):
        client.force_login(user)
        page = _page(client, "campaign_list")
        assert f"/c/{shown}/" in page and f"/c/{hidden}/" not in page


def test_a_partner_builds_its_batch_through_the_web(client, world):
    Batch.objects.all().delete()
    client.force_login(world.users.b_builder)
    response = client.post(reverse("batch_create", args=[world.joint.slug]), {})
    assert response.status_code == 302
    batch = Batch.objects.get()
    assert batch.agency == world.partner
    assert set(batch.letters.values_list("email", flat=True)) == {
        "abuse@isp.de.example", "noc@isp.at.example"}


# --- commands ------------------------------------------------------------------------------


def test_set_agency_creates_or_updates_an_agency_and_says_what_it_holds(db):
    out = run("set_agency", "Garante", "--country", "it", "--jurisdiction", "IT,sm,va,IT",
              "--sender", "sys@garante.example", "--reply-to", "risposte@garante.example")
    assert out.strip() == ("agency='Garante' country=IT jurisdiction=IT,SM,VA "
                           "sender=sys@garante.example reply_to=risposte@garante.example")
    out = run("set_agency", "Garante", "--jurisdiction", "IT")
    assert out.strip() == ("agency='Garante' country=IT jurisdiction=IT "
                           "sender=sys@garante.example reply_to=risposte@garante.example")
    assert Agency.objects.get(name="Garante").jurisdiction == ["IT"]
    with pytest.raises(CommandError, match="not an ISO 3166-1"):
        run("set_agency", "Garante", "--jurisdiction", "IT,Italy")
    with pytest.raises(CommandError):
        run("set_agency", "Garante", "--sender", "not-an-address")
    assert Agency.objects.get(name="Garante").jurisdiction == ["IT"]


def test_create_campaign_takes_partners_and_keeps_its_output_line(db):
    Agency.objects.create(name=PARTNER, jurisdiction=["DE"])
    out = run("create_campaign", "joint", "--agency", LEAD, "--partners",
              f"{PARTNER}, Garante")
    assert out.strip() == f"campaign=joint agency='{LEAD}' kinds=relay,proxy"
    campaign = Campaign.objects.get(slug="joint")
    assert sorted(campaign.partners.values_list("name", flat=True)) == ["Bundesnetzagentur",
                                                                         "Garante"]
    with pytest.raises(CommandError, match="cannot also be a partner"):
        run("create_campaign", "other", "--agency", LEAD, "--partners", LEAD)
    assert not Campaign.objects.filter(slug="other").exists()


def test_operation_report_prints_a_summary_line_and_json(world):
    out = run("operation_report")
    assert out.splitlines()[-1] == "campaigns=2 agencies=3 hosts=5 notified=0 remediated=0"
    data = json.loads(run("operation_report", "--json"))
    assert data["campaigns"] == 2
    assert [(r["agency"], r["hosts_routed"]) for r in data["agencies"]] == [
        (PARTNER, 2), (OUTSIDER, 0), (LEAD, 3)]


def test_letters_batch_create_builds_for_the_agency_asked_only_for_unbound_users(world):
    Batch.objects.all().delete()
    make_user("root", "admin")  # bound to no agency: may build for any participant
    out = run("letters_batch", "create", "--campaign", "joint-2026", "--by", "root",
              "--agency", PARTNER)
    batch = Batch.objects.get()
    assert out.strip() == f"batch={batch.pk} letters=2"
    assert batch.agency == world.partner
    with pytest.raises(CommandError, match="takes no part"):
        run("letters_batch", "create", "--campaign", "joint-2026", "--by", "root",
            "--agency", OUTSIDER)
    with pytest.raises(CommandError, match="only build batches for their own agency"):
        run("letters_batch", "create", "--campaign", "joint-2026", "--by", "abe",
            "--agency", PARTNER)
    out = run("letters_batch", "create", "--campaign", "joint-2026", "--by", "abe")
    assert out.strip().endswith("letters=3")
    assert Batch.objects.filter(agency=world.lead).count() == 1


def test_the_do_not_contact_list_shows_every_entry_and_binds_everyone(client, world):
    from probes.contacts.models import Suppression
    from probes.contacts.selectors import is_suppressed
    from probes.contacts.suppression import suppress

    u = world.users
    suppress(value="noc@lead-only.example", actor=u.a, reason="lead: asked by phone")
    suppress(value="noc@partner-only.example", actor=u.b, reason="partner: letter 7 bounced")
    suppress(value="shared.example", actor=None, reason="operation-wide", source="bounce")
    assert Suppression.objects.get(value="noc@lead-only.example").agency_id == world.lead.pk
    for user, mine, theirs in ((u.a, "lead", "partner"), (u.b, "partner", "lead")):
        client.force_login(user)
        page = _page(client, "suppression_list")
        # Every entry binds every agency, so each sees them all with who made them ...
        assert f"noc@{mine}-only.example" in page and "shared.example" in page
        assert f"noc@{theirs}-only.example" in page
        # ... but reads only its own reasons (another's may name its letters).
        assert f"{mine}: " in page and f"{theirs}: " not in page
    # The list binds every agency's sending.
    assert is_suppressed("noc@lead-only.example") and is_suppressed("noc@partner-only.example")


def test_the_deliverability_page_counts_each_agency_s_own_letters(world):
    from django.utils import timezone

    from letters.deliverability import deliverability
    from letters.models import Letter

    Letter.objects.filter(pk=world.a_letter.pk).update(state="bounced", sent_at=timezone.now())
    Letter.objects.filter(pk=world.b_letter.pk).update(state="sent", sent_at=timezone.now())
    mine = deliverability(world.joint, world.users.a)
    theirs = deliverability(world.joint, world.users.b)
    assert (mine["sent"], mine["bounced"]) == (1, 1)
    assert (theirs["sent"], theirs["bounced"]) == (1, 0)
