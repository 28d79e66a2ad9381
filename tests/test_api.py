"""The JSON API (/api/v1/): tokens, and the pages' permission matrix over every endpoint.

Expected answers follow from one row per endpoint (the permission it needs, whether only the
lead agency may call it), as in tests/test_access_matrix.py: no or a bad token → 401, a role
without the permission → 403, another agency's admin → 404 on the campaign's endpoints.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from campaign.api import api
from campaign.models import Agency, ApiToken, FeedImport, Host
from campaign.roles import ROLE_PERMISSIONS
from campaign.services import create_campaign
from campaign.tokens import create_token, revoke_token
from probes.contacts.models import ContactRun
from probes.verification.models import ProbeRun
from tests.conftest import FEEDS, make_user
from tests.letters import conftest as letters_fixtures
from tests.letters.conftest import add_finding

pytestmark = pytest.mark.django_db

compiled_translations = letters_fixtures.compiled_translations

LEAD, OTHER, PARTNER = "Federal Trade Commission", "Commission Nationale", "Bundesnetzagentur"
ROLES = ("analyst", "staff", "reviewer", "admin")
NO_TOKEN, BAD_TOKEN, REVOKED, OUTSIDER, PARTNER_ADMIN = (
    "no token", "bad token", "revoked", "outsider", "partner admin")
WHO = (NO_TOKEN, BAD_TOKEN, REVOKED, *ROLES, OUTSIDER, PARTNER_ADMIN)


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    perm: str
    lead_only: bool = False  # campaign-wide work: a partner agency's staff get 403
    ok: int = 200
    body: dict | None = None
    scoped: bool = True  # under /campaigns/{slug}: 404 for an agency outside the campaign


@pytest.fixture
def world(db, settings):
    settings.API_RATE_LIMIT = 10_000
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": "api-matrix"}}
    Agency.objects.create(name=LEAD, country="US", jurisdiction=["US"])
    Agency.objects.create(name=OTHER, country="FR", jurisdiction=["FR"])
    partner = Agency.objects.create(name=PARTNER, country="DE", jurisdiction=["DE"])
    campaign = create_campaign(slug="api-2026", agency_name=LEAD)
    campaign.partners.add(partner)
    host = add_finding(campaign, email="abuse@isp.us.example", country="US", ip="82.44.76.20")
    users = {role: make_user(f"{role}-user", role, LEAD) for role in ROLES}
    users[OUTSIDER] = make_user("outsider-admin", "admin", OTHER)
    users[PARTNER_ADMIN] = make_user("partner-admin", "admin", PARTNER)
    tokens = {who: create_token(user=user, name="matrix")[1] for who, user in users.items()}
    revoked, plaintext = create_token(user=users["admin"], name="old")
    revoke_token(token=revoked, actor=users["admin"])
    tokens[REVOKED] = plaintext
    tokens[BAD_TOKEN] = tokens["admin"][:-3] + "xyz"
    feed_import = FeedImport.objects.create(campaign=campaign, source="x.txt", kind=1,
                                            status=FeedImport.DONE, feed_id=_feed().pk)
    return SimpleNamespace(
        campaign=campaign, host=host, users=users, tokens=tokens, feed_import=feed_import,
        probe_run=ProbeRun.objects.get(campaign=campaign),
        contact_run=ContactRun.objects.create(campaign=campaign, status=ContactRun.DONE),
    )


def _feed():
    from campaign.models import Feed  # noqa: PLC0415

    return Feed.objects.get_or_create(name="api-feed")[0]


def rows(w) -> list[Row]:
    c = f"/api/v1/campaigns/{w.campaign.slug}"
    return [
        Row("get", "/api/v1/campaigns", "view_campaign", scoped=False),
        Row("get", c, "view_campaign"),
        Row("get", f"{c}/report", "view_campaign"),
        Row("post", f"{c}/imports", "import_feed", lead_only=True, ok=202,
            body={"url": "https://feeds.example/relays.txt", "kind": "relay"}),
        Row("get", f"{c}/imports/{w.feed_import.pk}", "view_campaign"),
        Row("get", f"{c}/hosts", "view_campaign"),
        Row("get", f"{c}/hosts/{w.host.ip}", "view_campaign"),
        Row("post", f"{c}/probe-runs", "run_probes", lead_only=True, ok=202, body={}),
        Row("get", f"{c}/probe-runs/{w.probe_run.pk}", "view_campaign"),
        Row("post", f"{c}/contact-runs", "resolve_contacts", lead_only=True, ok=202, body={}),
        Row("get", f"{c}/contact-runs/{w.contact_run.pk}", "view_campaign"),
    ]


def expected(who: str, row: Row) -> int:
    if who in (NO_TOKEN, BAD_TOKEN, REVOKED):
        return 401
    role = "admin" if who in (OUTSIDER, PARTNER_ADMIN) else who
    if row.perm not in ROLE_PERMISSIONS[role]:
        return 403
    if who == OUTSIDER and row.scoped:
        return 404
    if who == PARTNER_ADMIN and row.lead_only:
        return 403
    return row.ok


def call(client: Client, row: Row, token: str | None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    if row.method == "get":
        return client.get(row.path, **headers)
    if row.path.endswith("/imports"):
        return client.post(row.path, row.body, **headers)  # a form, as a file upload is
    return client.post(row.path, json.dumps(row.body), content_type="application/json",
                       **headers)


def test_the_matrix_names_every_endpoint_of_the_schema(world):
    schema = api.get_openapi_schema()
    documented = {(method, path) for path, ops in schema["paths"].items() for method in ops}
    slug = world.campaign.slug
    called = {(row.method, row.path.replace(slug, "{slug}")) for row in rows(world)}
    normalised = set()
    for method, path in called:
        parts = path.split("/")
        # Ids and addresses become the schema's parameter names.
        names = {"imports": "{pk}", "probe-runs": "{pk}", "contact-runs": "{pk}",
                 "hosts": "{ip}"}
        for i in range(1, len(parts)):
            if parts[i - 1] in names and parts[i] and not parts[i].startswith("{"):
                parts[i] = names[parts[i - 1]]
        normalised.add((method, "/".join(parts)))
    assert normalised == documented


@pytest.mark.parametrize("who", WHO)
def test_every_endpoint_answers_each_caller_as_the_pages_would(world, who):
    client = Client()
    token = None if who == NO_TOKEN else world.tokens[who]
    for row in rows(world):
        response = call(client, row, token)
        assert response.status_code == expected(who, row), (row.method, row.path, who,
                                                            response.content[:300])


def test_the_campaign_list_shows_an_outsider_nothing_of_the_campaign(world):
    client = Client()
    response = client.get("/api/v1/campaigns",
                          HTTP_AUTHORIZATION=f"Bearer {world.tokens[OUTSIDER]}")
    assert response.json() == []
    response = client.get("/api/v1/campaigns",
                          HTTP_AUTHORIZATION=f"Bearer {world.tokens['analyst']}")
    assert [c["slug"] for c in response.json()] == ["api-2026"]


def test_a_session_cookie_does_not_open_the_api(world):
    client = Client()
    client.force_login(world.users["admin"])
    assert client.get("/api/v1/campaigns").status_code == 401


def test_hosts_page_by_cursor_and_a_host_reads_as_show_host(world):
    for n in range(5):
        Host.objects.create(campaign=world.campaign, ip=f"82.44.77.{n + 1}", kinds=1)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {world.tokens['analyst']}")
    base = f"/api/v1/campaigns/{world.campaign.slug}/hosts"
    first = client.get(base, {"limit": 4, "state": "imported"}).json()
    assert len(first["hosts"]) == 4 and first["next"]
    rest = client.get(base, {"limit": 4, "state": "imported", "after": first["next"]}).json()
    assert len(rest["hosts"]) == 1 and rest["next"] is None
    assert {h["ip"] for h in first["hosts"] + rest["hosts"]} == {
        f"82.44.77.{n + 1}" for n in range(5)}
    network = client.get(base, {"q": "82.44.76.0/24"}).json()
    assert [h["ip"] for h in network["hosts"]] == ["82.44.76.20"]
    assert client.get(base, {"q": "not-an-ip"}).status_code == 400
    assert client.get(base, {"state": "bogus"}).status_code == 400

    detail = client.get(f"{base}/82.44.76.20").json()
    assert detail["state"] == "contact_resolved"
    assert detail["probes"][0]["check"] == "smtp_relay"
    assert detail["contact"]["email"] == "abuse@isp.us.example"


def test_an_import_started_by_file_runs_and_its_status_reads_back(
        world, django_capture_on_commit_callbacks):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {world.tokens['analyst']}")
    feed = SimpleUploadedFile("plain-ips.txt", (FEEDS / "plain-ips.txt").read_bytes())
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/v1/campaigns/{world.campaign.slug}/imports",
                               {"file": feed, "kind": "relay"})
    assert response.status_code == 202, response.content
    started = response.json()
    status = client.get(started["url"]).json()
    assert status["status"] == "done"
    assert status["summary"] == "lines=192 added=146 known=0 rejected=13"
    assert FeedImport.objects.get(pk=started["id"]).created_by == world.users["analyst"]


def test_bad_requests_get_a_reason(world, settings):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {world.tokens['admin']}")
    base = f"/api/v1/campaigns/{world.campaign.slug}"
    both = client.post(f"{base}/imports", {"url": "https://feeds.example/x",
                                           "file": SimpleUploadedFile("x.txt", b"1.2.3.4\n")})
    assert both.status_code == 400 and "either a file or a url" in both.json()["detail"]
    assert client.post(f"{base}/probe-runs", json.dumps({"state": "remediated"}),
                       content_type="application/json").status_code == 400
    assert client.post(f"{base}/contact-runs", json.dumps({"mode": "everything"}),
                       content_type="application/json").status_code == 400
    settings.FEED_MAX_BYTES = 1000
    big = client.post(f"{base}/imports", {"file": SimpleUploadedFile("big.txt", b"8" * 5000),
                                          "kind": "relay"})
    assert big.status_code == 400 and "1000-byte limit" in big.json()["detail"]


def test_calls_past_the_rate_limit_get_429_with_retry_after(world, settings):
    settings.API_RATE_LIMIT = 3
    client = Client(HTTP_AUTHORIZATION=f"Bearer {world.tokens['analyst']}")
    answers = [client.get("/api/v1/campaigns") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert 1 <= int(answers[-1]["Retry-After"]) <= 60
    # Counted per token: another person's calls go on.
    other = Client(HTTP_AUTHORIZATION=f"Bearer {world.tokens['staff']}")
    assert other.get("/api/v1/campaigns").status_code == 200


def test_tokens_are_hashed_at_rest_shown_once_and_revoked_on_the_page(world):
    client = Client()
    user = world.users["analyst"]
    client.force_login(user)
    page = client.post("/account/tokens/", {"name": "nightly import"})
    assert page.status_code == 200
    token = page.context["new_token"]
    assert token.startswith("sys_") and token in page.content.decode()
    stored = ApiToken.objects.get(user=user, name="nightly import")
    assert stored.key_hash != token and token not in json.dumps(
        list(ApiToken.objects.values()), default=str)
    assert token not in client.get("/account/tokens/").content.decode()  # shown once only

    api_client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api_client.get("/api/v1/campaigns").status_code == 200
    stored.refresh_from_db()
    assert stored.last_used_at is not None

    # Another person cannot revoke it; its owner can, and it stops working at once.
    intruder = Client()
    intruder.force_login(world.users["admin"])
    assert intruder.post(f"/account/tokens/{stored.pk}/revoke/").status_code == 404
    assert client.post(f"/account/tokens/{stored.pk}/revoke/").status_code == 302
    assert api_client.get("/api/v1/campaigns").status_code == 401


def test_a_deactivated_users_tokens_stop_working(world):
    user = world.users["staff"]
    user.is_active = False
    user.save()
    client = Client(HTTP_AUTHORIZATION=f"Bearer {world.tokens['staff']}")
    assert client.get("/api/v1/campaigns").status_code == 401


def test_the_schema_and_its_docs_page_are_served(world):
    client = Client()
    schema = client.get("/api/v1/openapi.json").json()
    assert schema["info"]["title"] == "Secure Your Server API"
    assert "/api/v1/campaigns/{slug}/hosts/{ip}" in schema["paths"]
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200 and b"/static/ninja/swagger-ui" in docs.content
