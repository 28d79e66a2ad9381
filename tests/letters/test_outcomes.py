"""The report's per-host rows (letters.outcomes): kept current by triggers, equal to counting
from the source tables after any sequence of changes, and safe next to concurrent writers."""

from __future__ import annotations

import random
from datetime import timedelta

import psycopg2
import pytest
from django.db import connection
from django.utils import timezone

from campaign import states as host_states
from campaign.models import Host
from letters import effect, outcomes, report, states
from letters.models import (
    Batch,
    ContactDraw,
    ControlHost,
    HostOutcome,
    Letter,
    LetterHost,
    OutcomeDirty,
)
from probes.contacts.models import Contact
from tests.letters.conftest import add_finding

LANGUAGES = ("de", "fr", "ja", "en")
COUNTRIES = ("DE", "FR", "JP", "", "US")


def _letter(campaign, batch, *, email, language, kind=states.FIRST_NOTICE, sent=None):
    return Letter.objects.create(batch=batch, campaign=campaign, email=email, language=language,
                                 kind=kind, state=states.SENT if sent else states.QUEUED,
                                 sent_at=sent, subject="s", body_text="t", body_html="h")


def _all_ways(campaign) -> tuple:
    """The report and effect from HostOutcome and from the source tables."""
    now = timezone.now()
    kept = report.campaign_report(campaign)
    source_sql = report.campaign_report(campaign, from_source=True)
    kept_effect = effect.campaign_effect(campaign, now=now)
    source_effect = effect.campaign_effect(campaign, now=now, from_source=True)
    return kept, source_sql, kept_effect, source_effect


def _rows() -> list[dict]:
    return list(HostOutcome.objects.order_by("host_id").values())


def _recounted(hosts) -> list[dict]:
    OutcomeDirty.objects.bulk_create(OutcomeDirty(host_id=h.pk) for h in hosts)
    outcomes.refresh_outcomes()
    return _rows()


@pytest.mark.django_db
@pytest.mark.parametrize("seed", range(6))
def test_after_any_sequence_of_changes_the_kept_rows_count_as_the_source_tables(
        campaign, bob, seed):
    rng = random.Random(seed)
    start = timezone.now() - timedelta(days=90)
    batch = Batch.objects.create(campaign=campaign, created_by=bob, state=states.SENT)
    hosts, letters, links, controls = [], [], [], []
    for i in range(16):
        hosts.append(add_finding(campaign, email=f"h{i}@example.net",
                                 language=rng.choice(LANGUAGES), country=rng.choice(COUNTRIES)))

    def send_letter():
        # A built letter (unsent: counts for nothing) about one to three hosts, then sent.
        chosen = rng.sample(hosts, rng.randint(1, 3))
        kind = rng.choice([states.FIRST_NOTICE, states.FIRST_NOTICE, states.SECOND_NOTICE])
        letter = _letter(campaign, batch, email=f"l{len(letters)}@example.net",
                         language=rng.choice(LANGUAGES), kind=kind)
        for host in chosen:
            links.append(LetterHost.objects.create(letter=letter, host=host))
        letters.append(letter)
        Letter.objects.filter(pk=letter.pk).update(
            state=states.SENT, sent_at=start + timedelta(days=rng.randint(0, 30)))

    def track_letter():
        letter = rng.choice(letters)
        target = rng.choice([states.DELIVERED, states.BOUNCED, states.REPLIED])
        stamp = {states.DELIVERED: "delivered_at", states.BOUNCED: "bounced_at",
                 states.REPLIED: "replied_at"}[target]
        Letter.objects.filter(pk=letter.pk, sent_at__isnull=False).update(
            state=target, **{stamp: timezone.now()})

    def fix_or_reopen_host():
        host = rng.choice(hosts)
        if rng.random() < 0.6:
            Host.objects.filter(pk=host.pk).update(
                state=host_states.REMEDIATED,
                remediated_at=start + timedelta(days=rng.randint(5, 80), hours=rng.randint(0, 23)))
        else:
            Host.objects.filter(pk=host.pk).update(state=host_states.NOTIFIED, remediated_at=None)

    def change_countries():
        host = rng.choice(hosts)
        if rng.random() < 0.5:
            Host.objects.filter(pk=host.pk).update(country=rng.choice(COUNTRIES))
        else:
            Contact.objects.filter(host=host).update(country=rng.choice(COUNTRIES),
                                                     language=rng.choice(LANGUAGES))

    def drop_or_delete_link():
        if not links:
            return
        link = links.pop(rng.randrange(len(links)))
        if rng.random() < 0.5:
            LetterHost.objects.filter(pk=link.pk).update(dropped=True)
        else:
            LetterHost.objects.filter(pk=link.pk).delete()

    def hold_out_host():
        free = [h for h in hosts if not ControlHost.objects.filter(host=h).exists()]
        if not free:
            return
        host = rng.choice(free)
        draw = ContactDraw.objects.create(campaign=campaign, email=f"c{host.pk}@example.net",
                                          held_out=True, bucket=0.01, percent=10, reason="t")
        controls.append(ControlHost.objects.create(
            campaign=campaign, host=host, draw=draw, since=start + timedelta(days=2)))

    def fix_control():
        if controls:
            control = rng.choice(controls)
            ControlHost.objects.filter(pk=control.pk).update(
                remediated_at=start + timedelta(days=rng.randint(3, 60)))

    def delete_contact():
        Contact.objects.filter(host=rng.choice(hosts)).delete()

    actions = [send_letter] * 4 + [track_letter, fix_or_reopen_host, fix_or_reopen_host,
                                   change_countries, drop_or_delete_link, hold_out_host,
                                   fix_control, delete_contact]
    send_letter()
    for step in range(40):
        action = rng.choice(actions)
        action()
        kept, source_sql, kept_effect, source_effect = _all_ways(campaign)
        assert kept == source_sql, f"step {step}: {action.__name__}"
        assert kept_effect == source_effect, f"step {step}: {action.__name__}"
        # The rows the triggers kept are the rows a recount of every host gives.
        assert _rows() == _recounted(hosts), f"step {step}: {action.__name__}"
    assert kept and kept[-1]["notified"] > 0
    # Every refresh drained the queue, and only hosts written to or held out have a row.
    assert not OutcomeDirty.objects.exists()
    with_row = set(HostOutcome.objects.values_list("host_id", flat=True))
    sent = set(LetterHost.objects.filter(dropped=False, letter__sent_at__isnull=False)
               .values_list("host_id", flat=True))
    held = set(ControlHost.objects.values_list("host_id", flat=True))
    assert with_row == sent | held


@pytest.mark.django_db
def test_unsent_letters_and_unlisted_hosts_make_no_rows_and_leave_no_queue(campaign, bob):
    batch = Batch.objects.create(campaign=campaign, created_by=bob)
    listed = add_finding(campaign, email="a@example.net")
    unlisted = add_finding(campaign, email="b@example.net")
    letter = _letter(campaign, batch, email="a@example.net", language="en")
    LetterHost.objects.create(letter=letter, host=listed)
    Letter.objects.filter(pk=letter.pk).update(claimed_at=timezone.now(), claim_token="w1")
    Host.objects.filter(pk=unlisted.pk).update(state=host_states.NOT_OPEN)
    # Contacts queue their host whatever it is (see the migration); the refresh drops the
    # hosts that take no part and makes no row for a letter that has not left.
    outcomes.refresh_outcomes()
    assert not HostOutcome.objects.exists() and not OutcomeDirty.objects.exists()
    Host.objects.filter(pk=unlisted.pk).update(state=host_states.VERIFIED_OPEN)
    assert not OutcomeDirty.objects.exists()  # a host never written to: no queue row
    # The letter leaves: its host is queued, and refreshing turns it into a row.
    Letter.objects.filter(pk=letter.pk).update(state=states.SENT, sent_at=timezone.now())
    assert list(OutcomeDirty.objects.values_list("host_id", flat=True)) == [listed.pk]
    assert outcomes.refresh_outcomes() == 1
    row = HostOutcome.objects.get()
    assert (row.host_id, row.language, row.country, row.fixed_tenths) == (
        listed.pk, "en", "US", None)
    assert outcomes.refresh_outcomes() == 0


@pytest.mark.django_db
def test_a_report_refreshes_its_own_campaign_and_the_queue_drains_in_chunks(campaign, bob):
    from campaign.services import create_campaign

    other = create_campaign(slug="other-2026", agency_name=campaign.agency.name, kinds="relay")
    for target in (campaign, other):
        batch = Batch.objects.create(campaign=target, created_by=bob)
        for i in range(5):
            host = add_finding(target, email=f"{target.slug}{i}@example.net")
            letter = _letter(target, batch, email=f"{target.slug}{i}@example.net",
                             language="en", sent=timezone.now())
            LetterHost.objects.create(letter=letter, host=host)
    assert outcomes.refresh_outcomes(campaign.pk, chunk=2) == 5
    assert set(HostOutcome.objects.values_list("campaign_id", flat=True)) == {campaign.pk}
    assert not OutcomeDirty.objects.filter(host_id__in=Host.objects.filter(
        campaign=campaign).values("id")).exists()
    assert OutcomeDirty.objects.exists()  # the other campaign's, for the beat
    # A host queued twice (its contact, its letter) is taken whole into one chunk: done once.
    assert outcomes.refresh_outcomes(chunk=3) == 5
    assert HostOutcome.objects.count() == 10 and not OutcomeDirty.objects.exists()


@pytest.mark.django_db
def test_follow_up_bookkeeping_on_control_hosts_queues_nothing(campaign):
    host = add_finding(campaign, email="c@example.net")
    draw = ContactDraw.objects.create(campaign=campaign, email="c@example.net", held_out=True,
                                      bucket=0.01, percent=10, reason="t")
    control = ControlHost.objects.create(campaign=campaign, host=host, draw=draw)
    outcomes.refresh_outcomes()
    ControlHost.objects.filter(pk=control.pk).update(last_retest_at=timezone.now())
    assert not OutcomeDirty.objects.exists()
    ControlHost.objects.filter(pk=control.pk).update(remediated_at=timezone.now())
    assert OutcomeDirty.objects.count() == 1


@pytest.mark.django_db
def test_deleting_a_host_leaves_no_row_and_no_queue(campaign, bob):
    batch = Batch.objects.create(campaign=campaign, created_by=bob)
    host = add_finding(campaign, email="a@example.net")
    letter = _letter(campaign, batch, email="a@example.net", language="en", sent=timezone.now())
    LetterHost.objects.create(letter=letter, host=host)
    outcomes.refresh_outcomes()
    assert HostOutcome.objects.filter(host=host).exists()
    host.delete()
    outcomes.refresh_outcomes()
    assert not HostOutcome.objects.exists() and not OutcomeDirty.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_host_locked_by_another_transaction_stays_queued_until_it_commits(campaign, bob):
    batch = Batch.objects.create(campaign=campaign, created_by=bob)
    host = add_finding(campaign, email="a@example.net")
    letter = _letter(campaign, batch, email="a@example.net", language="en", sent=timezone.now())
    LetterHost.objects.create(letter=letter, host=host)
    settings = connection.settings_dict
    other = psycopg2.connect(dbname=settings["NAME"], user=settings["USER"],
                             host=settings["HOST"], port=settings["PORT"] or 5432)
    try:
        with other.cursor() as cursor:
            # Another worker has the host (a follow-up re-test finding it closed), uncommitted.
            cursor.execute("UPDATE campaign_host SET state = %s, remediated_at = now() "
                           "WHERE id = %s", [host_states.REMEDIATED, host.pk])
        assert outcomes.refresh_outcomes() == 0
        assert OutcomeDirty.objects.filter(host_id=host.pk).exists()
        assert report.campaign_report(campaign) == []
        other.commit()
    finally:
        other.close()
    rows = report.campaign_report(campaign)
    assert rows[-1]["notified"] == 1 and rows[-1]["remediated"] == 1
    assert rows == report.campaign_report(campaign, from_source=True)
    assert not OutcomeDirty.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_contact_change_racing_a_hold_out_is_not_lost(campaign):
    """The contact's update holds no lock the refresh respects, so it must queue the host
    itself: a refresh between the hold-out and the contact's commit computes the old
    language, and the contact's own queue row brings the new one in afterwards."""
    host = add_finding(campaign, email="c@example.net", language="en")
    outcomes.refresh_outcomes()
    settings = connection.settings_dict
    other = psycopg2.connect(dbname=settings["NAME"], user=settings["USER"],
                             host=settings["HOST"], port=settings["PORT"] or 5432)
    try:
        with other.cursor() as cursor:
            cursor.execute("UPDATE probes_contact SET language = 'fr' WHERE host_id = %s",
                           [host.pk])
        draw = ContactDraw.objects.create(campaign=campaign, email="c@example.net",
                                          held_out=True, bucket=0.01, percent=10, reason="t")
        ControlHost.objects.create(campaign=campaign, host=host, draw=draw)
        outcomes.refresh_outcomes()
        assert HostOutcome.objects.get().effect_language == "en"  # all it could see
        other.commit()
    finally:
        other.close()
    outcomes.refresh_outcomes()
    assert HostOutcome.objects.get().effect_language == "fr"
    assert not OutcomeDirty.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_migration_can_be_unapplied_and_applied_again(campaign, bob):
    from django.core.management import call_command

    def triggers() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'letters_outcome%'")
            return cursor.fetchone()[0]

    assert triggers() == 9
    # Made before going down: later migrations add letter columns the ORM would write.
    batch = Batch.objects.create(campaign=campaign, created_by=bob)
    host = add_finding(campaign, email="a@example.net")
    letter = _letter(campaign, batch, email="a@example.net", language="en")
    call_command("migrate", "letters", "0003", verbosity=0)
    try:
        assert triggers() == 0
        # The tables the triggers watched still take writes.
        LetterHost.objects.create(letter=letter, host=host)
        LetterHost.objects.filter(letter=letter).update(dropped=True)
    finally:
        call_command("migrate", "letters", verbosity=0)
    assert triggers() == 9
    assert OutcomeDirty.objects.filter(host_id=host.pk).exists()  # queued again on the way up


@pytest.mark.parametrize(("histogram", "median"), [
    ({}, None),
    ({35: 1}, 3.5),
    ({30: 1, 41: 1}, 3.55),
    ({10: 3, 400: 6, 20: 1}, 40.0),
    ({10: 2, 20: 2}, 1.5),
])
def test_the_median_of_a_histogram_is_statistics_medians(histogram, median):
    import statistics

    assert outcomes.median_tenths(histogram) == median
    if histogram:
        values = [v for v, n in histogram.items() for _ in range(n)]
        assert outcomes.median_tenths(histogram) == statistics.median(values) / 10


def test_days_are_counted_to_the_nearest_tenth_as_in_sql():
    assert outcomes.tenths_of_days(0) == 0
    assert outcomes.tenths_of_days(8640 * 2.49) == 2
    assert outcomes.tenths_of_days(8640 * 2.5) == 3
    assert outcomes.tenths_of_days(86400 * 40) == 400


def test_beat_refreshes_the_rows_every_minute(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["letters-refresh-outcomes"]
    assert entry == {"task": "letters.tasks.refresh_outcomes_task", "schedule": 60.0}
    from letters.outcomes import refresh_outcomes_task

    assert refresh_outcomes_task.name == entry["task"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_refreshes_neither_fail_nor_lose_a_host(campaign, bob):
    import threading

    from django.db import connections

    batch = Batch.objects.create(campaign=campaign, created_by=bob)
    hosts = [add_finding(campaign, email=f"h{i}@example.net") for i in range(30)]
    for i, host in enumerate(hosts):
        letter = _letter(campaign, batch, email=f"h{i}@example.net", language="en",
                         sent=timezone.now())
        LetterHost.objects.create(letter=letter, host=host)
    errors, done = [], []

    def refresh():
        try:
            done.append(outcomes.refresh_outcomes())
        except Exception as exc:  # noqa: BLE001 - the test reports any failure
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=refresh) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and sum(done) == 30
    assert HostOutcome.objects.count() == 30 and not OutcomeDirty.objects.exists()


@pytest.mark.django_db
def test_whole_days_to_the_cut_off_match_the_source_tables_at_any_time_of_day(campaign, bob):
    from datetime import UTC, datetime

    cutoff = datetime(2026, 11, 20, 12, 0, 0, 500, tzinfo=UTC)
    batch = Batch.objects.create(campaign=campaign, created_by=bob, state=states.SENT)
    n = 0
    for days_before in (0, 1, 2, 30):
        for hour in (6, 12, 18):
            # t0 at that hour, days_before days before the cut-off's day; some fixed after it.
            t0 = cutoff.replace(hour=hour, microsecond=0 if hour != 12 else 500) - timedelta(
                days=days_before)
            if t0 > cutoff:
                continue
            for fixed_after in (None, timedelta(days=days_before + 3)):
                host = add_finding(campaign, email=f"t{n}@example.net", country="DE")
                n += 1
                letter = _letter(campaign, batch, email=f"t{n}@example.net", language="de",
                                 sent=t0)
                LetterHost.objects.create(letter=letter, host=host)
                if fixed_after is not None:
                    Host.objects.filter(pk=host.pk).update(state=host_states.REMEDIATED,
                                                           remediated_at=t0 + fixed_after)
                if hour == 18:
                    # Also held out once (its contact changed since): in both groups.
                    draw = ContactDraw.objects.create(campaign=campaign, email=f"d{n}@x.net",
                                                      held_out=True, bucket=0.01, percent=10,
                                                      reason="t")
                    ControlHost.objects.create(campaign=campaign, host=host, draw=draw,
                                               since=t0 - timedelta(hours=1))
    kept = effect.campaign_effect(campaign, now=cutoff)
    source = effect.campaign_effect(campaign, now=cutoff, from_source=True)
    assert kept == source
    assert kept["control"]["hosts"] > 0 and kept["notified"]["hosts"] == n
    # Censored at whole days: a 06:00 send 1 day before a 12:00 cut-off is 1 day old, an
    # 18:00 send the day before is 0 days old (the curve's censoring needs the exact day).
    cells = outcomes.effect_cells(campaign.pk, cutoff)
    source_cells = effect._cells(campaign, cutoff, from_source=True)
    assert sorted(_merged(cells)) == sorted(_merged(source_cells))


def _merged(cells) -> list[tuple]:
    totals: dict[tuple, int] = {}
    for *key, n in cells:
        totals[tuple(key)] = totals.get(tuple(key), 0) + n
    return list(totals.items())
