"""Report benchmark: `campaign_report SLUG --json` over a campaign of 1,000,000 hosts.

    .venv/bin/python bench/report_bench.py [--hosts 1000000] [--per-contact 5] [--runs 5]

Creates the database `sys_bench_report` on the server of DATABASE_URL (default PostgreSQL on
127.0.0.1; tables from the models), seeds it with set-based SQL (INSERT … SELECT over
generate_series: no Python loop per host), then times the command. The campaign: hosts in
20 countries, one contact per `--per-contact` hosts in 12 languages, 10% of contacts held
out as the control group (about 20% of their hosts found closed at a follow-up), the rest
written to (about 60% remediated at the 30- or 60-day follow-up, some letters delivered,
bounced or replied). Target: the report in under 1 s.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "campaign.test_settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sys_bench_report")

TARGET_SECONDS = 1.0
COUNTRIES = ("US", "DE", "FR", "JP", "BR", "CN", "RU", "IN", "GB", "IT",
             "ES", "NL", "PL", "KR", "SE", "CZ", "RO", "TR", "VN", "ID")
LANGUAGES = ("en", "de", "fr", "ja", "pt-br", "zh-hans", "ru", "es", "it", "nl", "pl", "ko")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=1_000_000)
    parser.add_argument("--per-contact", type=int, default=5)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--churn", type=float, default=0.001,
                        help="share of letters changed before each report (default 0.001)")
    parser.add_argument("--keep", action="store_true", help="keep sys_bench_report afterwards")
    parser.add_argument("--reuse", action="store_true",
                        help="time the report on a kept sys_bench_report (no seeding)")
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    # Tables straight from the models, in a database of its own (recreated each run).
    connection.settings_dict["TEST"]["MIGRATE"] = False
    connection.settings_dict["TEST"]["NAME"] = "sys_bench_report"
    setup_test_environment()
    if args.reuse:
        connection.close()
        connection.settings_dict["NAME"] = "sys_bench_report"
        run(args, connection)
        return
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    install_outcome_triggers(connection)
    try:
        run(args, connection)
    finally:
        if not args.keep:
            connection.creation.destroy_test_db(old_name, verbosity=0)


def install_outcome_triggers(connection) -> None:
    """The triggers that keep the report's per-host rows (tables come from the models here,
    so the migration that adds them in a real installation does not run)."""
    import importlib

    migration = importlib.import_module("letters.migrations.0004_host_outcome")
    with connection.cursor() as cursor:
        cursor.execute(migration.OUTCOME_TRIGGERS)


def insert_select(connection, model, columns: dict[str, str], tail: str) -> int:
    """INSERT INTO model's table (columns…) SELECT exprs… <tail>; other NOT NULL columns get
    the model's defaults, so fields added to a model later do not break the seeding."""
    from django.utils import timezone

    names, exprs, values = [], [], []
    for field in model._meta.concrete_fields:
        column = field.column
        if column in columns:
            names.append(column)
            exprs.append(columns[column])
        elif not field.primary_key and not field.null:
            default = field.get_default()
            if default is None and field.get_internal_type() == "DateTimeField":
                default = timezone.now()
            names.append(column)
            exprs.append("%s")
            values.append(field.get_db_prep_save(default, connection))
    sql = (f"INSERT INTO {model._meta.db_table} ({', '.join(names)}) "
           f"SELECT {', '.join(exprs)} {tail}")
    with connection.cursor() as cursor:
        # Every "%" in the expressions is doubled: the defaults go in as parameters.
        cursor.execute(sql, values)
        return cursor.rowcount


def seed(args, connection) -> dict:
    from django.contrib.auth.models import User
    from django.utils import timezone

    from campaign.models import Agency, Campaign, Host
    from letters import outcomes
    from letters.models import Batch, ContactDraw, ControlHost, Letter, LetterHost
    from probes.contacts.models import Contact

    now = timezone.now()
    agency = Agency.objects.create(name="Bench Agency", country="US")
    campaign = Campaign.objects.create(agency=agency, slug="bench-report", name="Bench",
                                       holdout_percent=10, holdout_seed="bench")
    user = User.objects.create(username="bench")
    batch = Batch.objects.create(campaign=campaign, agency=agency, created_by=user,
                                 state="sent")
    n, per = args.hosts, args.per_contact
    countries = "ARRAY[" + ",".join(f"'{c}'" for c in COUNTRIES) + "]"
    languages = "ARRAY[" + ",".join(f"'{lang}'" for lang in LANGUAGES) + "]"
    # Host g belongs to contact g / per; contacts with (contact % 10) = 0 are the controls.
    # t0: 100–119 days ago; notified hosts fixed at day 30 or 60 (r = a hash of g), controls
    # found closed at day 30 in about a fifth of cases.
    series = (f"FROM (SELECT g, g / {per} AS contact, "
              f"(g * 2654435761 %% 4294967296) %% 100 AS r "
              f"FROM generate_series(0, {n - 1}) g) s")
    t0 = f"('{now.isoformat()}'::timestamptz - ((100 + contact %% 20) || ' days')::interval)"
    control = "(contact %% 10 = 0)"
    fixed_days = (f"CASE WHEN {control} THEN CASE WHEN r < 20 THEN 30 END "
                  f"ELSE CASE WHEN r < 35 THEN 30 WHEN r < 60 THEN 60 END END")
    started = time.perf_counter()
    insert_select(connection, Host, {
        "campaign_id": str(campaign.pk),
        "ip": "('10.' || (g / 65536) %% 256 || '.' || (g / 256) %% 256 || '.' || g %% 256)::inet",
        "kinds": "1",
        "state": f"CASE WHEN {control} THEN 'contact_resolved' "
                 f"WHEN ({fixed_days}) IS NOT NULL THEN 'remediated' ELSE 'notified' END",
        "country": f"({countries})[1 + g %% 20]",
        "remediated_at": f"CASE WHEN NOT {control} AND ({fixed_days}) IS NOT NULL "
                         f"THEN {t0} + (({fixed_days}) || ' days')::interval END",
    }, series)
    insert_select(connection, Contact, {
        "host_id": "(SELECT MIN(id) FROM campaign_host) + g",
        "status": "'resolved'",
        "email": "('abuse' || contact || '@net' || contact %% 997 || '.example')",
        "language": f"({languages})[1 + (contact / 10) %% 12]",
        "country": f"({countries})[1 + g %% 20]",
        "source": "'rdap'",
    }, series)
    first_host = "(SELECT MIN(id) FROM campaign_host)"
    contacts = (f"FROM (SELECT DISTINCT g / {per} AS contact FROM generate_series(0, {n - 1}) g)"
                f" s")
    insert_select(connection, ContactDraw, {
        "campaign_id": str(campaign.pk),
        "email": "('abuse' || contact || '@net' || contact %% 997 || '.example')",
        "held_out": f"{control}",
        "bucket": "0.5",
        "percent": "10",
        "reason": "'bench'",
        "drawn_at": t0,
    }, contacts)
    insert_select(connection, ControlHost, {
        "campaign_id": str(campaign.pk),
        "host_id": f"{first_host} + g",
        "draw_id": "d.id",
        "since": t0,
        "last_retest_at": f"{t0} + interval '30 days'",
        "remediated_at": f"CASE WHEN r < 20 THEN {t0} + interval '30 days' END",
    }, series + " JOIN letters_contactdraw d ON d.email = 'abuse' || s.contact || '@net' || "
                "s.contact %% 997 || '.example' AND d.held_out")
    insert_select(connection, Letter, {
        "batch_id": str(batch.pk),
        "campaign_id": str(campaign.pk),
        "kind": "'first_notice'",
        "state": "(ARRAY['sent','delivered','delivered','bounced','replied'])[1 + contact %% 5]",
        "email": "('abuse' || contact || '@net' || contact %% 997 || '.example')",
        "language": f"({languages})[1 + (contact / 10) %% 12]",
        "idempotency_key": "md5(contact::text)",
        "message_id": "('<letter.' || md5(contact::text) || '@bench.example>')",
        "sent_at": t0,
        "delivered_at": f"CASE WHEN contact %% 5 IN (1, 2) THEN {t0} END",
        "replied_at": f"CASE WHEN contact %% 5 = 4 THEN {t0} + interval '2 days' END",
    }, contacts + f" WHERE NOT {control}")
    insert_select(connection, LetterHost, {
        "letter_id": "l.id",
        "host_id": f"{first_host} + g",
    }, series + " JOIN letters_letter l ON l.email = 'abuse' || s.contact || '@net' || "
                "s.contact %% 997 || '.example'")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    seconds = time.perf_counter() - started
    # The triggers queued every host written to or held out: the first refresh builds all rows
    # (what the migration's back-fill costs an installation upgraded with a million hosts).
    started = time.perf_counter()
    refreshed = outcomes.refresh_outcomes()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE letters_hostoutcome")
    print(f"first refresh: {refreshed} host rows in {time.perf_counter() - started:.1f} s")
    return {"campaign": campaign, "seed_seconds": seconds,
            "hosts": Host.objects.count(), "letters": Letter.objects.count(),
            "links": LetterHost.objects.count(), "control": ControlHost.objects.count()}


def churn(connection, campaign, run_number: int, share: float) -> int:
    """Mark `share` of the campaign's letters delivered (as webhooks would); hosts queued."""
    from letters.models import OutcomeDirty

    before = OutcomeDirty.objects.count()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE letters_letter SET state = 'delivered', delivered_at = now() "
            "WHERE campaign_id = %s AND sent_at IS NOT NULL AND id %% %s = %s",
            [campaign.pk, round(1 / share), run_number])
    return OutcomeDirty.objects.count() - before


def run(args, connection) -> None:
    from django.core.management import call_command

    from letters import effect, report

    if args.reuse:
        from campaign.models import Campaign, Host
        from letters.models import ControlHost, Letter, LetterHost

        seeded = {"campaign": Campaign.objects.get(slug="bench-report"), "seed_seconds": 0.0,
                  "hosts": Host.objects.count(), "letters": Letter.objects.count(),
                  "links": LetterHost.objects.count(), "control": ControlHost.objects.count()}
    else:
        seeded = seed(args, connection)
    campaign = seeded["campaign"]
    print(f"seeded hosts={seeded['hosts']} letters={seeded['letters']} "
          f"links={seeded['links']} control_hosts={seeded['control']} "
          f"in {seeded['seed_seconds']:.1f} s")
    timings, rows_t, effect_t, churned = [], [], [], []
    out = ""
    for run_number in range(args.runs):
        # Between two reports the campaign moves on: tracking events for 0.1% of its letters
        # (180 letters, 900 hosts: more than a minute of webhooks, after which beat would
        # have refreshed them anyway) that the report's own refresh must take in.
        churned.append(churn(connection, campaign, run_number, args.churn))
        buffer = io.StringIO()
        started = time.perf_counter()
        call_command("campaign_report", campaign.slug, "--json", stdout=buffer)
        timings.append(time.perf_counter() - started)
        out = buffer.getvalue()
        started = time.perf_counter()
        report.campaign_report(campaign)
        rows_t.append(time.perf_counter() - started)
        started = time.perf_counter()
        effect.campaign_effect(campaign)
        effect_t.append(time.perf_counter() - started)
    payload = json.loads(out)
    e = payload["effect"]
    print(f"rows={len(payload['rows'])} by_language={len(e['by_language'])} "
          f"by_country={len(e['by_country'])}")
    for name in ("notified", "control"):
        g = e[name]
        print(f"{name}: hosts={g['hosts']} remediated={g['remediated']} rate={g['rate']} "
              f"ci95={g['ci95']} median_days={g['median_days']}")
    print(f"difference: rate={e['difference']['rate']} ci95={e['difference']['ci95']}")
    best, median = min(timings), statistics.median(timings)
    print(f"campaign_report --json: best {best:.3f} s, median {median:.3f} s over {args.runs} "
          f"runs, each after {statistics.median(churned):.0f} hosts changed "
          f"(rows {statistics.median(rows_t):.3f} s, effect {statistics.median(effect_t):.3f} s)")
    verdict = "OK" if median < TARGET_SECONDS else "SLOW"
    print(f"{verdict}: target < {TARGET_SECONDS:.0f} s for {seeded['hosts']} hosts")


if __name__ == "__main__":
    main()
