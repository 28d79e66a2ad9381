from celery import shared_task

from campaign.feeds.parsers import FormatError
from campaign.outbound import FetchError


@shared_task(bind=True, max_retries=5, default_retry_delay=60)
def run_import(self, import_id: int) -> str:
    from campaign.imports import execute_import
    from campaign.models import FeedImport

    if not FeedImport.objects.filter(pk=import_id).exists():
        return "gone"
    try:
        return execute_import(import_id).summary_line
    except FetchError as exc:
        if exc.permanent:
            return f"failed: {exc}"
        raise self.retry(exc=exc) from exc
    except FormatError as exc:
        return f"failed: {exc}"


@shared_task(name="campaign.refresh_dashboard", ignore_result=True)
def refresh_dashboard(campaign_id: int) -> None:
    """Recount a large campaign's dashboard figures into the cache (campaign.dashboard)."""
    from campaign.dashboard import refresh

    refresh(campaign_id)
