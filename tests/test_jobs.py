"""Feed imports, probe runs and contact runs are one kind of thing, campaign.jobs.Job: the same
status JSON (shared keys), the same progress arithmetic, one progress box and one poller."""

from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from campaign import kinds
from campaign.jobs import Job
from campaign.models import Feed, FeedImport
from campaign.services import create_campaign
from probes.contacts.models import ContactRun
from probes.verification.models import ProbeRun

pytestmark = pytest.mark.django_db

SHARED_KEYS = {"id", "status", "status_label", "finished", "done", "total", "percent",
               "progress_percent", "summary", "error"}


def make_import(campaign, **fields) -> FeedImport:
    feed, _ = Feed.objects.get_or_create(name="jobs-feed.txt")
    return FeedImport.objects.create(campaign=campaign, feed=feed, source="jobs-feed.txt",
                                     kind=kinds.RELAY, **fields)


def with_progress(model, campaign, done: int, total: int, **fields) -> Job:
    """A job of `model` with `done` of `total` units of work behind it."""
    if model is FeedImport:
        return make_import(campaign, bytes_read=done, bytes_total=total, **fields)
    if model is ProbeRun:
        return ProbeRun.objects.create(campaign=campaign, done=done, total=total, **fields)
    return ContactRun.objects.create(campaign=campaign, hosts_done=done, hosts_total=total,
                                     **fields)


JOB_PAGES = [
    (FeedImport, "import_detail", "import_status"),
    (ProbeRun, "probe_run_detail", "probe_run_status"),
    (ContactRun, "contact_run_detail", "contact_run_status"),
]


@pytest.mark.parametrize("model", [FeedImport, ProbeRun, ContactRun])
def test_every_job_counts_its_progress_the_same_way(campaign, model):
    job = with_progress(model, campaign, 1, 4, status=Job.RUNNING)
    assert isinstance(job, Job)
    assert (job.progress_percent, job.finished) == (25, False)
    # Never 100 % before the runner says done, never a division by an unknown total.
    assert with_progress(model, campaign, 4, 4, status=Job.RUNNING).progress_percent == 99
    assert with_progress(model, campaign, 0, 0, status=Job.RUNNING).progress_percent == 0
    done = with_progress(model, campaign, 2, 4, status=Job.DONE)
    assert (done.progress_percent, done.finished) == (100, True)
    failed = with_progress(model, campaign, 2, 4, status=Job.FAILED)
    assert (failed.progress_percent, failed.finished) == (50, True)


@pytest.mark.parametrize("model", [FeedImport, ProbeRun, ContactRun])
def test_a_failed_job_records_its_error_in_one_place(campaign, model):
    job = with_progress(model, campaign, 1, 4, status=Job.RUNNING)
    job.mark_failed("the registry went away")
    job.refresh_from_db()
    assert (job.status, job.error, job.finished) == (Job.FAILED, "the registry went away", True)
    assert job.finished_at is not None


def test_the_three_status_urls_share_their_keys_and_values(client, alice, campaign):
    client.force_login(alice)
    shared = []
    for model, _, status_name in JOB_PAGES:
        job = with_progress(model, campaign, 3, 12, status=Job.RUNNING, created_by=alice)
        response = client.get(reverse(status_name, args=[campaign.slug, job.pk]))
        assert response.status_code == 200
        assert response["Cache-Control"] == "no-store"
        data = response.json()
        assert SHARED_KEYS <= set(data), status_name
        shared.append({key: data[key] for key in SHARED_KEYS - {"id", "summary"}})
        assert data["id"] == job.pk and data["summary"] == job.summary_line
    assert shared[0] == shared[1] == shared[2] == {
        "status": "running", "status_label": "Running", "finished": False, "done": 3,
        "total": 12, "percent": 25, "progress_percent": 25, "error": "",
    }


def test_each_status_url_keeps_to_its_campaign_and_its_own_kind_of_job(client, alice, campaign):
    other = create_campaign(slug="other-2026", agency_name="Other agency", kinds="relay")
    client.force_login(alice)
    for model, _, status_name in JOB_PAGES:
        mine = with_progress(model, campaign, 1, 2, status=Job.RUNNING)
        theirs = with_progress(model, other, 1, 2, status=Job.RUNNING)
        assert client.get(reverse(status_name, args=[campaign.slug, theirs.pk])).status_code == 404
        assert client.get(reverse(status_name, args=[other.slug, mine.pk])).status_code == 404
    # A probe run's id under the import URL is no import.
    run = ProbeRun.objects.create(campaign=campaign, pk=987654)
    assert client.get(reverse("import_status", args=[campaign.slug, run.pk])).status_code == 404


def test_one_progress_box_and_one_poller_serve_every_job_page(client, alice, campaign):
    client.force_login(alice)
    pages = []
    for model, detail_name, status_name in JOB_PAGES:
        job = with_progress(model, campaign, 1, 2, status=Job.RUNNING)
        page = client.get(reverse(detail_name, args=[campaign.slug, job.pk])).content.decode()
        assert "js/job-progress.js" in page, detail_name
        assert f'data-status-url="{reverse(status_name, args=[campaign.slug, job.pk])}"' in page
        assert 'data-field="status_label">Running<' in page
        pages.append(page)
    campaign_page = client.get(reverse("campaign_detail", args=[campaign.slug])).content.decode()
    assert campaign_page.count("data-live-progress") == 2  # latest probe and contact runs
    assert "js/job-progress.js" in campaign_page
    for page in [*pages, campaign_page]:
        assert "live-progress.js" not in page and "import-progress.js" not in page
    static = Path(settings.BASE_DIR) / "static" / "js"
    assert not (static / "live-progress.js").exists()
    assert not (static / "import-progress.js").exists()


def test_the_job_tasks_keep_the_names_queued_messages_and_the_beat_use():
    from campaign.tasks import run_import_task
    from probes.contacts.tasks import run_contact_run_task
    from probes.tasks import run_probe_run_task

    assert run_import_task.name == "campaign.tasks.run_import"
    assert run_probe_run_task.name == "probes.run"
    assert run_contact_run_task.name == "probes.resolve_contacts"
