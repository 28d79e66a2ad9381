"""A real Celery worker (in a thread) on the real Redis broker runs imports end to end.

The rest of the suite runs tasks eagerly; here tasks cross the broker as JSON messages, the
worker executes them with its own database connection, and results come back through Redis.
"""

from __future__ import annotations

import io

import pytest
from celery.contrib.testing.worker import start_worker
from celery.result import AsyncResult, EagerResult
from celery.signals import task_postrun
from django.core.management import call_command
from django.db import connections

from campaign.celery import app
from campaign.imports import create_import
from campaign.models import FeedImport, Host, Sighting
from campaign.services import create_campaign
from campaign.tasks import run_import_task
from tests.conftest import FEEDS

pytestmark = pytest.mark.django_db(transaction=True)


def _close_worker_connections(**_kwargs) -> None:
    # The worker thread's own connection would otherwise outlive the test database.
    connections.close_all()


@pytest.fixture(scope="module")
def worker():
    assert app.conf.broker_url.startswith("redis://"), "this test needs the real Redis broker"
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    app.control.purge()  # leftovers from an earlier, interrupted run
    task_postrun.connect(_close_worker_connections, weak=False)
    try:
        with start_worker(app, pool="solo", concurrency=1, perform_ping_check=False,
                          shutdown_timeout=30) as started:
            yield started
    finally:
        task_postrun.disconnect(_close_worker_connections)
        app.conf.task_always_eager = eager


@pytest.fixture
def campaign_tx(db):
    return create_campaign(slug="worker-2026", agency_name="CERT-Worker", kinds="relay,proxy")


def test_the_worker_runs_a_queued_import_and_reports_its_summary(worker, campaign_tx):
    feed_import = create_import(campaign=campaign_tx, source=str(FEEDS / "open-proxies.txt"))
    result = run_import_task.delay(feed_import.pk)
    assert not isinstance(result, EagerResult)  # it really went through the broker
    assert result.get(timeout=30) == "lines=107 added=89 known=0 rejected=11"
    feed_import.refresh_from_db()
    assert feed_import.status == FeedImport.DONE
    assert (feed_import.added, feed_import.rejected, feed_import.duplicates) == (89, 11, 2)
    assert Host.objects.filter(campaign=campaign_tx).count() == 89
    assert Sighting.objects.filter(feed_import=feed_import).count() == 94


def test_import_feed_background_prints_the_job_and_the_worker_finishes_it(worker, campaign_tx):
    out = io.StringIO()
    call_command("import_feed", "--campaign", campaign_tx.slug, "--kind", "relay",
                 "--background", str(FEEDS / "plain-ips.txt"), stdout=out)
    line = out.getvalue().strip().splitlines()[-1]
    import_part, job_part = line.split(" ")
    assert import_part.startswith("import=") and job_part.startswith("job=")
    import_id = int(import_part.removeprefix("import="))
    summary = AsyncResult(job_part.removeprefix("job="), app=app).get(timeout=30)
    assert summary == "lines=192 added=146 known=0 rejected=13"
    feed_import = FeedImport.objects.get(pk=import_id)
    assert feed_import.status == FeedImport.DONE
    assert feed_import.summary_line == summary


def test_the_worker_reports_a_refused_url_as_a_permanent_failure(
    worker, campaign_tx, settings, tmp_path
):
    settings.PROBE_ALLOWED_NETWORKS = []
    settings.MEDIA_ROOT = tmp_path
    feed_import = create_import(campaign=campaign_tx, source="http://127.0.0.1:9/feed.txt",
                                kind="relay")
    outcome = run_import_task.delay(feed_import.pk).get(timeout=30)
    assert outcome.startswith("failed: refusing to connect to 127.0.0.1")
    feed_import.refresh_from_db()
    assert feed_import.status == FeedImport.FAILED
    assert "refusing to connect" in feed_import.error


def test_a_task_for_an_import_that_is_gone_does_nothing(worker):
    assert run_import_task.delay(987654321).get(timeout=30) == "gone"
