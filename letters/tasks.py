"""Celery tasks: thin and idempotent; each loads rows by id and calls one service."""

from __future__ import annotations

from celery import shared_task
from django.db import DatabaseError

from campaign.models import Campaign
from letters import (
    batches,
    followup,
    retest,  # noqa: F401 - the recipient page's re-test task lives with its code
    sending,
)
from letters.models import Batch


@shared_task(bind=True, max_retries=10, default_retry_delay=60,
             autoretry_for=(DatabaseError,), retry_backoff=True)
def send_batch_task(self, batch_id: int) -> str:
    batch = Batch.objects.filter(pk=batch_id).first()
    if batch is None:
        return "gone"
    summary = sending.send_batch(batch=batch)
    batch.refresh_from_db()
    if summary.failed and batch.state == "sending":
        # Temporary failures stay queued: try the rest again later (claims make it safe).
        raise self.retry(countdown=300)
    if summary.waiting and batch.state == "sending" and not self.request.is_eager:
        # Letters waiting for a business day in their recipient's zone: look again hourly
        # (a new task, not a retry: a weekend outlasts the retry budget). Run in-process
        # (eager), the countdown would not wait: the command's next run picks them up.
        send_batch_task.apply_async((batch_id,), countdown=3600)
    return summary.line


@shared_task(autoretry_for=(DatabaseError,), max_retries=5, retry_backoff=True)
def follow_up_task(campaign_id: int) -> str:
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return "gone"
    return followup.run_follow_up(campaign).line


@shared_task
def follow_up_due_task() -> int:
    """Beat: queue a follow-up for every active campaign that has hosts due."""
    queued = 0
    for campaign in Campaign.objects.filter(status=Campaign.ACTIVE):
        if followup.due_hosts(campaign):
            follow_up_task.delay(campaign.pk)
            queued += 1
    return queued



@shared_task(name="letters.tasks.fetch_mail_task", autoretry_for=(DatabaseError,),
             max_retries=3, retry_backoff=True)
def fetch_mail_task() -> str:
    """The beat's poll of the bounce mailbox (every minute, when INBOUND_IMAP_URL is set)."""
    from letters.inbound.imap import fetch_mail

    return fetch_mail().line


@shared_task(name="letters.draft_daily_batches", autoretry_for=(DatabaseError,), max_retries=3,
             retry_backoff=True)
def draft_daily_batches_task() -> list[int]:
    """Beat, daily: draft batches for campaigns whose automation asks for them."""
    return [batch.pk for batch in batches.draft_daily_batches()]
