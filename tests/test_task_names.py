"""Celery tasks are found by name (queued messages, the beat, `send_task`): moving a task's
code to another module must not rename it."""

from campaign.celery import app

TASK_NAMES = {
    "campaign.refresh_dashboard",
    "campaign.fetch_feed",
    "campaign.fetch_feeds_due",
    "campaign.tasks.run_import",
    "letters.draft_daily_batches",
    "letters.recipient_retest",
    "letters.tasks.fetch_mail_task",
    "letters.tasks.follow_up_due_task",
    "letters.tasks.follow_up_task",
    "letters.tasks.refresh_outcomes_task",
    "letters.tasks.send_batch_task",
    "probes.auto_probe_new",
    "probes.chunk",
    "probes.refresh_rdap_bootstrap",
    "probes.reprobe_due",
    "probes.resolve_contacts",
    "probes.resolve_due_contacts",
    "probes.run",
}


def registered() -> set[str]:
    app.loader.import_default_modules()  # what a worker imports when it starts
    return {name for name in app.tasks if not name.startswith("celery.")}


def test_every_task_keeps_its_name():
    assert registered() == TASK_NAMES


def test_the_beat_schedules_registered_tasks(settings):
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert scheduled <= registered()


def test_every_task_has_a_queue_of_the_five(settings):
    """A task without a route would land on `default` by accident; each is placed on purpose."""
    assert set(settings.TASK_QUEUE_OF) == registered()
    assert set(settings.TASK_QUEUE_OF.values()) == set(settings.TASK_QUEUES)
    assert {q.name for q in app.conf.task_queues} == set(settings.TASK_QUEUES)
    assert app.amqp.router.route({}, "probes.chunk")["queue"].name == "probes"
    assert app.amqp.router.route({}, "letters.tasks.send_batch_task")["queue"].name == "mail"
