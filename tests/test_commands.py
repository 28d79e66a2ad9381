"""The management commands' surface, the roles behind `--by`, and the host lifecycle."""

from __future__ import annotations

import io
import json
import threading

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from campaign import kinds, states
from campaign.hosts import transition_host, transition_hosts
from campaign.models import Agency, AuditEvent, Campaign, Host, StaffProfile
from campaign.roles import has_perm, user_roles
from campaign.services import create_campaign, visible_campaigns
from tests.conftest import FEEDS, make_user


def run(name: str, *args: str) -> str:
    out = io.StringIO()
    call_command(name, *map(str, args), stdout=out)
    return out.getvalue().strip()


# --- create_campaign ----------------------------------------------------------------------


@pytest.mark.django_db
def test_create_campaign_creates_the_agency_and_prints_the_campaign():
    assert run("create_campaign", "oss-2026", "--agency", "Federal Trade Commission") == (
        "campaign=oss-2026 agency='Federal Trade Commission' kinds=relay,proxy")
    assert run("create_campaign", "relays", "--agency", "Federal Trade Commission",
               "--kinds", "relay") == (
        "campaign=relays agency='Federal Trade Commission' kinds=relay")
    assert Agency.objects.count() == 1
    assert Campaign.objects.get(slug="relays").kinds == kinds.RELAY
    assert AuditEvent.objects.filter(action="campaign.create").count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(("args", "message"), [
    (["bad slug!", "--agency", "A"], "slug"),
    (["ok", "--agency", "A", "--kinds", "smtp"], "unknown kind 'smtp'"),
    (["ok", "--agency", "A", "--kinds", ","], "no kind given"),
])
def test_create_campaign_explains_bad_input(args, message):
    with pytest.raises(CommandError, match=message):
        run("create_campaign", *args)
    assert not Campaign.objects.exists()


@pytest.mark.django_db
def test_create_campaign_refuses_a_taken_slug(campaign):
    with pytest.raises(CommandError, match="already exists"):
        run("create_campaign", campaign.slug, "--agency", "Other")


@pytest.mark.django_db
def test_create_campaign_checks_the_acting_users_role(alice, bob):
    with pytest.raises(CommandError, match="may not create campaigns"):
        run("create_campaign", "x", "--agency", "A", "--by", "alice")
    assert run("create_campaign", "y", "--agency", "A", "--by", "bob").startswith("campaign=y")
    assert Campaign.objects.get().created_by == bob
    with pytest.raises(CommandError, match="no active user 'mallory'"):
        run("create_campaign", "z", "--agency", "A", "--by", "mallory")


# --- add_user -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_add_user_takes_the_password_from_the_environment(monkeypatch, django_user_model):
    monkeypatch.setenv("DJANGO_USER_PASSWORD", "s3cret-enough-for-tests")
    assert run("add_user", "carol", "--role", "analyst", "--agency", "CERT-XY") == (
        "user=carol role=analyst")
    carol = django_user_model.objects.get(username="carol")
    assert carol.check_password("s3cret-enough-for-tests")
    assert user_roles(carol) == {"analyst"}
    assert not carol.is_staff
    assert StaffProfile.objects.get(user=carol).agency.name == "CERT-XY"


@pytest.mark.django_db
def test_only_the_admin_role_gets_into_the_django_admin(monkeypatch, django_user_model):
    monkeypatch.setenv("DJANGO_USER_PASSWORD", "s3cret-enough-for-tests")
    run("add_user", "root", "--role", "admin")
    run("add_user", "rev", "--role", "reviewer")
    assert django_user_model.objects.get(username="root").is_staff
    assert not django_user_model.objects.get(username="rev").is_staff


@pytest.mark.django_db
def test_add_user_refuses_an_unknown_role(monkeypatch):
    monkeypatch.setenv("DJANGO_USER_PASSWORD", "x")
    with pytest.raises(CommandError, match="invalid choice: 'owner'"):
        run("add_user", "dave", "--role", "owner")


# --- show_host and campaign_status --------------------------------------------------------


@pytest.fixture
def imported(campaign):
    run("import_feed", "--campaign", campaign.slug, "--kind", "relay", FEEDS / "plain-ips.txt")
    return campaign


@pytest.mark.django_db
def test_show_host_json_has_the_documented_keys(imported):
    detail = json.loads(run("show_host", imported.slug, "97.2.221.112", "--json"))
    assert {"ip", "state", "kinds", "ports", "sightings"} <= set(detail)
    assert (detail["ip"], detail["state"], detail["kinds"], detail["ports"]) == (
        "97.2.221.112", "imported", ["relay"], [])
    (sighting,) = detail["sightings"]
    assert sighting["feed"] == "plain-ips.txt" and sighting["port"] is None


@pytest.mark.django_db
def test_show_host_finds_an_ipv6_host_however_it_is_written(imported):
    detail = json.loads(run("show_host", imported.slug,
                            "2A0B:07A5:FE7F:FE21:EC7B:7856:700D:926F", "--json"))
    assert detail["ip"] == "2a0b:7a5:fe7f:fe21:ec7b:7856:700d:926f"


@pytest.mark.django_db
def test_show_host_without_json_prints_one_summary_line_and_the_sightings(imported):
    lines = run("show_host", imported.slug, "97.2.221.112").splitlines()
    assert lines[0] == "97.2.221.112 imported kinds=relay ports=-"
    assert "in plain-ips.txt line" in lines[1]


@pytest.mark.django_db
@pytest.mark.parametrize(("slug", "ip", "message"), [
    ("oss-2026", "not-an-ip", "'not-an-ip' is not an IP address"),
    ("oss-2026", "8.8.4.4", "8.8.4.4 is not a host of campaign oss-2026"),
    ("nope", "8.8.4.4", "no campaign with slug 'nope'"),
])
def test_show_host_explains_what_it_cannot_find(imported, slug, ip, message):
    with pytest.raises(CommandError, match=message):
        run("show_host", slug, ip, "--json")


@pytest.mark.django_db
def test_campaign_status_json_counts_hosts_in_every_state(imported):
    status = json.loads(run("campaign_status", imported.slug, "--json"))
    assert status["hosts"]["total"] == 146
    assert status["hosts"]["by_state"] == {**dict.fromkeys(states.HOST_STATES, 0),
                                           "imported": 146}
    assert status["imports"]["total"] == 1


@pytest.mark.django_db
def test_campaign_status_text_form_ends_with_the_totals(imported):
    assert run("campaign_status", imported.slug).splitlines()[-1] == "hosts=146 imports=1"


# --- roles --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_analyst_can_import_but_not_review(alice, campaign):
    assert has_perm(alice, "import_feed")
    assert not has_perm(alice, "review_batch")
    assert not has_perm(alice, "add_campaign")
    summary = run("import_feed", "--campaign", campaign.slug, "--kind", "relay", "--by", "alice",
                  FEEDS / "plain-ips-bom.txt").splitlines()[-1]
    assert summary == "lines=46 added=42 known=0 rejected=3"
    assert campaign.imports.get().created_by == alice


@pytest.mark.django_db
def test_a_reviewer_can_review_but_not_import(rita, campaign):
    assert has_perm(rita, "review_batch")
    with pytest.raises(CommandError, match="may not import feeds"):
        run("import_feed", "--campaign", campaign.slug, "--kind", "relay", "--by", "rita",
            FEEDS / "plain-ips-bom.txt")
    assert not campaign.imports.exists()
    assert not Host.objects.exists()


@pytest.mark.django_db
def test_a_user_without_a_role_or_deactivated_may_do_nothing(alice, django_user_model):
    nobody = django_user_model.objects.create_user("nobody", password="x")
    assert user_roles(nobody) == set()
    assert not has_perm(nobody, "view_campaign")
    alice.is_active = False
    alice.save()
    assert not has_perm(alice, "import_feed")


@pytest.mark.django_db
def test_staff_build_and_send_but_do_not_review_their_own_batches(bob):
    assert has_perm(bob, "build_batch") and has_perm(bob, "send_batch")
    assert not has_perm(bob, "review_batch")


@pytest.mark.django_db
def test_agency_bound_users_see_only_their_agencys_campaigns(campaign, django_user_model):
    other = create_campaign(slug="bsi-2026", agency_name="BSI", kinds="relay")
    bound = make_user("ulrike", "analyst", agency_name="BSI")
    unbound = make_user("uma", "analyst")
    root = django_user_model.objects.create_superuser("root", password="x")
    make_user("root", "admin", agency_name="BSI")
    assert list(visible_campaigns(bound)) == [other]
    assert set(visible_campaigns(unbound)) == {campaign, other}
    assert set(visible_campaigns(root)) == {campaign, other}


# --- the host lifecycle -------------------------------------------------------------------


PAIRS = [(a, b) for a in states.HOST_STATES for b in states.HOST_STATES]


@pytest.mark.django_db
@pytest.mark.parametrize(("current", "target"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_every_pair_of_states_is_either_allowed_or_an_illegal_transition(
    campaign, current, target
):
    host = Host.objects.create(campaign=campaign, ip="82.44.79.141", state=current)
    if current == target:
        assert transition_host(host, target) is False
    elif target in states.HOST_TRANSITIONS[current]:
        assert transition_host(host, target, reason="test") is True
        assert AuditEvent.objects.filter(action="host.transition").count() == 1
    else:
        with pytest.raises(states.IllegalTransition):
            transition_host(host, target)
        assert not AuditEvent.objects.filter(action="host.transition").exists()
    host.refresh_from_db()
    expected = target if target in states.HOST_TRANSITIONS[current] else current
    assert host.state == expected
    assert (host.remediated_at is not None) is (expected == states.REMEDIATED
                                                and current != states.REMEDIATED)


def test_the_documented_path_through_the_lifecycle_is_allowed():
    path = [states.IMPORTED, states.VERIFIED_OPEN, states.CONTACT_RESOLVED, states.NOTIFIED,
            states.REMEDIATED]
    for current, target in zip(path, path[1:], strict=False):
        assert states.can_transition(current, target)
    for outcome in (states.NOT_OPEN, states.UNREACHABLE, states.VERIFIED_OPEN):
        assert states.can_transition(states.IMPORTED, outcome)
    assert states.can_transition(states.VERIFIED_OPEN, states.NO_CONTACT)
    # Only a verified open host has a contact to resolve; nothing is notified unverified.
    assert states.sources_for(states.CONTACT_RESOLVED) >= {states.VERIFIED_OPEN}
    assert states.IMPORTED not in states.sources_for(states.CONTACT_RESOLVED)
    assert states.sources_for(states.NOTIFIED) == {states.CONTACT_RESOLVED}


@pytest.mark.django_db
def test_bulk_transitions_move_only_hosts_whose_state_allows_it(campaign):
    hosts = Host.objects.bulk_create([
        Host(campaign=campaign, ip=f"82.44.79.{i + 1}", state=state)
        for i, state in enumerate(states.HOST_STATES)
    ])
    moved = transition_hosts([h.pk for h in hosts], states.NOTIFIED)
    assert moved == 1
    assert dict(Host.objects.values_list("ip", "state"))["82.44.79.5"] == states.NOTIFIED
    assert Host.objects.filter(state=states.NOTIFIED).count() == 2  # it and the one already so


@pytest.mark.django_db
def test_a_host_cannot_change_state_by_a_plain_save(campaign):
    host = Host.objects.create(campaign=campaign, ip="82.44.79.141")
    host.state = states.NOTIFIED
    with pytest.raises(PermissionDenied):
        host.save()


@pytest.mark.django_db(transaction=True)
def test_concurrent_transitions_of_one_host_let_exactly_one_worker_win(agency):
    campaign = create_campaign(slug="race", agency_name=agency.name)
    host = Host.objects.create(campaign=campaign, ip="82.44.79.141")
    targets = [states.VERIFIED_OPEN, states.NOT_OPEN, states.UNREACHABLE] * 3
    barrier = threading.Barrier(len(targets))
    results: dict[int, bool] = {}
    errors: list[BaseException] = []

    def worker(index: int, target: str) -> None:
        try:
            mine = Host.objects.get(pk=host.pk)  # each worker read "imported"
            barrier.wait(timeout=10)
            results[index] = transition_host(mine, target)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, t)) for i, t in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    winners = [i for i, won in results.items() if won]
    assert len(winners) == 1
    host.refresh_from_db()
    assert host.state == targets[winners[0]]
    assert AuditEvent.objects.filter(action="host.transition").count() == 1
