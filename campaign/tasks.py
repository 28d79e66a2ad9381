from celery import shared_task
from django.db import InterfaceError, OperationalError, close_old_connections

from campaign.feeds.parsers import FormatError
from campaign.outbound import FetchError

# The database went away (a restart, a failover): an import starts over cleanly, so it is
# retried soon, and more than once, rather than left "running" for ever.
DB_RETRY_SECONDS = 5


# The name is the one queued messages have always carried (the function was `run_import`).
@shared_task(name="campaign.tasks.run_import", bind=True, max_retries=5, default_retry_delay=60)
def run_import_task(self, import_id: int) -> str:
    from campaign.imports import run_import
    from campaign.models import FeedImport

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


@shared_task(name="campaign.refresh_dashboard", ignore_result=True)
def refresh_dashboard(campaign_id: int) -> None:
    """Recount a large campaign's dashboard figures into the cache (campaign.dashboard)."""
    from campaign.dashboard import refresh

    refresh(campaign_id)
