"""Celery task for feed imports, and the one function that queues it."""

from celery import shared_task
from django.db import InterfaceError, OperationalError, close_old_connections, transaction

from campaign.feeds.parsers import FormatError
from campaign.imports import run_import
from campaign.models import FeedImport
from campaign.outbound import FetchError
from campaign.subscriptions import fetch_due

# The database went away (a restart, a failover): an import starts over cleanly, so it is
# retried soon, and more than once, rather than left "running" for ever.
DB_RETRY_SECONDS = 5


# The name is the one queued messages have always carried (the function was `run_import`).
@shared_task(name="campaign.tasks.run_import", bind=True, max_retries=5, default_retry_delay=60)
def run_import_task(self, import_id: int) -> str:
    try:
        if not FeedImport.objects.filter(pk=import_id).exists():
            return "gone"
        return run_import(import_id).summary_line
    except FetchError as exc:
        if exc.permanent:
            return f"failed: {exc}"
        raise self.retry(exc=exc) from exc
    except FormatError as exc:
        return f"failed: {exc}"
    except (OperationalError, InterfaceError) as exc:
        close_old_connections()  # drop the broken connection; the retry opens a new one
        delay = DB_RETRY_SECONDS * (self.request.retries + 1)
        raise self.retry(exc=exc, countdown=delay) from exc


def queue_import(feed_import: FeedImport) -> None:
    """Hand the import to the workers once the transaction that created it commits."""
    # After commit: a worker must find the import row it is handed.
    transaction.on_commit(lambda: run_import_task.delay(feed_import.pk))


@shared_task(name="campaign.fetch_feeds_due")
def fetch_feeds_due_task() -> str:
    """The beat's every-minute look at the feed subscriptions."""
    return fetch_due().summary_line


@shared_task(name="campaign.fetch_feed")
def fetch_feed_task(subscription_id: int) -> str:
    """A person's "fetch now" on the feeds page."""
    return fetch_due(now_all=True, subscription_ids=[subscription_id]).summary_line


def queue_feed_fetch(subscription_id: int) -> None:
    transaction.on_commit(lambda: fetch_feed_task.delay(subscription_id))
