"""Feeds that fetch themselves: subscriptions, their schedule, and one fetch end to end.

A subscription is fetched with a conditional GET (If-None-Match / If-Modified-Since from the
last good answer): an unchanged feed costs one 304 and no import. A 200 whose body is byte for
byte the last one imported (a server that ignores validators) is unchanged too. New content
becomes an ordinary import (same parsers, same SSRF guard, same history on the import page),
run at once. A failed fetch is retried after FEED_RETRY_SECONDS, doubling, never later than
the next regular fetch; after FEED_FAILURES_ALERT failures in a row the subscription shows red.
Fetchers claim subscriptions (`fetching_until`), so the beat and a person's `fetch_feeds
--now` never fetch the same one at once.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from celery.schedules import crontab
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from campaign.addresses import AddressRejected, parse_ip
from campaign.agencies import require_lead
from campaign.audit import record
from campaign.feeds.parsers import FORMATS, FormatError
from campaign.imports import create_import, resolve_kind, run_import
from campaign.models import Campaign, FeedFetch, FeedSubscription
from campaign.outbound import FetchError, check_target, fetch_url
from campaign.roles import has_perm

_INTERVAL = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
SECRET_NAME = re.compile(r"FEED_AUTH_[A-Z0-9_]{1,40}")
# How long a claim holds: a fetch is bounded by FEED_FETCH_DEADLINE; the import after it
# by the feed's size. A fetcher killed mid-way lets go after this.
CLAIM_SECONDS = 3600


@dataclass
class FetchCounts:
    fetched: int = 0
    unchanged: int = 0
    failed: int = 0

    @property
    def summary_line(self) -> str:
        return f"fetched={self.fetched} unchanged={self.unchanged} failed={self.failed}"


def parse_interval(text: str) -> int:
    """`"6h"`, `"30m"`, `"1d"`, `"1h30m"`, `"900s"`, or a bare number of seconds → seconds."""
    text = text.strip().lower()
    if text.isdigit():
        seconds = int(text)
    else:
        parts = _INTERVAL.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise ValidationError(
                f"{text!r} is not an interval (write e.g. 15m, 6h, 1d or 1h30m)",
                code="bad_interval")
        seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds < settings.FEED_MIN_INTERVAL:
        raise ValidationError(
            f"every {seconds}s is too often: feeds are fetched at most every "
            f"{settings.FEED_MIN_INTERVAL} seconds (FEED_MIN_INTERVAL)", code="too_often")
    return seconds


def _crontab(expression: str) -> crontab:
    fields = expression.split()
    if len(fields) != 5:
        raise ValidationError(
            f"{expression!r} is not a cron expression (five fields: minute hour "
            "day-of-month month day-of-week, in UTC)", code="bad_cron")
    minute, hour, day_of_month, month, day_of_week = fields
    try:
        return crontab(minute=minute, hour=hour, day_of_month=day_of_month,
                       month_of_year=month, day_of_week=day_of_week)
    except ValueError as exc:
        raise ValidationError(f"{expression!r} is not a cron expression: {exc}",
                              code="bad_cron") from None


def next_regular_fetch(subscription: FeedSubscription, after: datetime) -> datetime:
    """When the schedule next wants the feed, after `after`."""
    if subscription.cron:
        schedule = _crontab(subscription.cron)
        schedule.nowfun = lambda: after
        return after + schedule.remaining_estimate(after)
    return after + timedelta(seconds=subscription.interval_seconds or 86400)


def retry_after_failure(subscription: FeedSubscription, now: datetime) -> datetime:
    """FEED_RETRY_SECONDS after the first failure, doubling, capped at the regular fetch."""
    delay = settings.FEED_RETRY_SECONDS * 2 ** min(max(subscription.failures - 1, 0), 20)
    return min(now + timedelta(seconds=delay), next_regular_fetch(subscription, now))


def _check_url(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(f"{url!r} is not an http(s) URL", code="bad_url")
    try:
        literal = parse_ip(parts.hostname)
    except AddressRejected:
        literal = None  # a name: resolved and checked at every fetch, every redirect
    if literal is not None:
        try:
            check_target(str(literal))
        except AddressRejected as exc:
            raise ValidationError(f"{url} cannot be fetched: {exc}", code="refused") from None
    return url


def auth_headers(secret_name: str) -> dict[str, str]:
    """The header a subscription's secret names (`FEED_AUTH_X="Authorization: Bearer …"`)."""
    if not secret_name:
        return {}
    value = os.environ.get(secret_name, "")
    name, sep, content = value.partition(":")
    if not sep or not name.strip() or not content.strip() or "\n" in value or "\r" in value:
        raise FetchError(f"{secret_name} is not set to 'Header-Name: value' in the "
                         "environment", permanent=True)
    return {name.strip(): content.strip()}


@transaction.atomic
def subscribe(
    *, campaign: Campaign, url: str, fmt: str = "auto", kind: str | None = None,
    every: str | None = None, cron: str | None = None, auth_secret: str = "", actor=None,
) -> FeedSubscription:
    """Subscribe the campaign to a feed URL, or change the subscription it already has."""
    if actor is not None and not has_perm(actor, "import_feed"):
        raise PermissionDenied(f"{actor} may not import feeds")
    if actor is not None:
        require_lead(actor, campaign)
    if auth_secret and actor is not None and not has_perm(actor, "change_campaign"):
        # A secret sent to a URL of one's choosing could be read there: admins only.
        raise PermissionDenied(f"{actor} may not attach a feed secret (admins only)")
    if fmt != "auto" and fmt not in FORMATS:
        raise ValidationError(f"unknown format {fmt!r} (expected auto or {', '.join(FORMATS)})")
    resolve_kind(campaign, kind, fmt)  # refuses a kind the campaign does not target
    if bool(every) == bool(cron):
        raise ValidationError("give one schedule: an interval (--every) or a cron expression")
    if auth_secret and not SECRET_NAME.fullmatch(auth_secret):
        raise ValidationError(f"{auth_secret!r}: a feed secret is the name of an environment "
                              "variable FEED_AUTH_<NAME> (capitals, digits, _)")
    interval = parse_interval(every) if every else None
    if cron:
        _crontab(cron)
    url = _check_url(url)
    now = timezone.now()
    subscription, created = FeedSubscription.objects.select_for_update().get_or_create(
        campaign=campaign, url=url[:2000],
        defaults={"format": fmt, "kind": kind or "", "interval_seconds": interval,
                  "cron": cron or "", "auth_secret": auth_secret, "next_fetch_at": now,
                  "created_by": actor if getattr(actor, "pk", None) else None},
    )
    if not created:
        subscription.format, subscription.kind = fmt, kind or ""
        subscription.interval_seconds, subscription.cron = interval, cron or ""
        subscription.auth_secret, subscription.active = auth_secret, True
        subscription.next_fetch_at = (
            next_regular_fetch(subscription, subscription.last_fetch_at)
            if subscription.last_fetch_at else now)
        subscription.save()
    record("feed.subscribe" if created else "feed.subscription_change", actor=actor,
           campaign_id=campaign.pk, obj=subscription,
           data={"url": url[:500], "format": fmt, "kind": kind or "",
                 "schedule": subscription.schedule_text})
    return subscription


def set_active(subscription: FeedSubscription, *, active: bool, actor=None) -> None:
    if actor is not None and not has_perm(actor, "import_feed"):
        raise PermissionDenied(f"{actor} may not change feed subscriptions")
    if actor is not None:
        require_lead(actor, subscription.campaign)
    changes = {"active": active}
    if active:
        changes["next_fetch_at"] = timezone.now()
    FeedSubscription.objects.filter(pk=subscription.pk).update(**changes)
    record("feed.resume" if active else "feed.pause", actor=actor,
           campaign_id=subscription.campaign_id, obj=subscription)


def claim(*, now: datetime, due_only: bool = True, limit: int = 50,
          subscription_ids: list[int] | None = None, exclude: set[int] | None = None
          ) -> list[int]:
    """Take up to `limit` subscriptions to fetch; no other fetcher takes them meanwhile."""
    free = Q(fetching_until__isnull=True) | Q(fetching_until__lt=now)
    with transaction.atomic():
        rows = FeedSubscription.objects.select_for_update(skip_locked=True).filter(
            free, active=True)
        if due_only:
            rows = rows.filter(next_fetch_at__lte=now)
        if subscription_ids is not None:
            rows = rows.filter(pk__in=subscription_ids)
        if exclude:
            rows = rows.exclude(pk__in=exclude)
        ids = list(rows.order_by("next_fetch_at", "id").values_list("id", flat=True)[:limit])
        FeedSubscription.objects.filter(pk__in=ids).update(
            fetching_until=now + timedelta(seconds=CLAIM_SECONDS))
    return ids


def fetch_due(*, now_all: bool = False, subscription_ids: list[int] | None = None
              ) -> FetchCounts:
    """Fetch every subscription that is due (`now_all`: every active one), each once."""
    counts = FetchCounts()
    started = timezone.now()
    done: set[int] = set()
    while ids := claim(now=started, due_only=not now_all, subscription_ids=subscription_ids,
                       exclude=done):
        for pk in ids:
            outcome = fetch_one(pk).outcome
            setattr(counts, outcome, getattr(counts, outcome) + 1)
            done.add(pk)
    return counts


def _fetch_dir(subscription: FeedSubscription) -> Path:
    path = Path(settings.MEDIA_ROOT) / "subscriptions" / str(subscription.pk)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_one(subscription_id: int) -> FeedFetch:
    """Fetch one claimed subscription; import what is new. Never raises for the feed's faults:
    the outcome and the error are on the returned FeedFetch (and the subscription)."""
    subscription = FeedSubscription.objects.select_related("campaign").get(pk=subscription_id)
    now = timezone.now()
    fetch = FeedFetch.objects.create(subscription=subscription, started_at=now)
    body = _fetch_dir(subscription) / f"fetch-{fetch.pk}"
    changes: dict = {"last_fetch_at": now, "fetching_until": None}
    try:
        with body.open("w+b") as out:
            got = fetch_url(subscription.url, out, max_bytes=settings.FEED_MAX_BYTES,
                            deadline=settings.FEED_FETCH_DEADLINE, etag=subscription.etag,
                            last_modified=subscription.last_modified,
                            headers=auth_headers(subscription.auth_secret))
        fetch.http_status, fetch.bytes = got.status, got.bytes
        digest = "" if got.not_modified else _sha256(body)
        if got.not_modified or digest == subscription.content_sha256:
            fetch.outcome = FeedFetch.UNCHANGED
        else:
            feed_import = create_import(
                campaign=subscription.campaign, source=subscription.url,
                fmt=subscription.format, kind=subscription.kind or None, adopt=body)
            fetch.feed_import = feed_import
            run_import(feed_import.pk)
            fetch.outcome = FeedFetch.FETCHED
            # Only a feed imported to the end is the copy the next request asks about.
            changes.update(etag=got.etag[:500], last_modified=got.last_modified[:100],
                           content_sha256=digest)
        changes.update(failures=0, last_error="", last_success_at=now,
                       next_fetch_at=next_regular_fetch(subscription, now))
    except (FetchError, FormatError, ValidationError, OSError) as exc:
        message = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        fetch.outcome, fetch.error = FeedFetch.FAILED, message[:2000]
        subscription.failures += 1
        changes.update(failures=subscription.failures, last_error=message[:2000],
                       next_fetch_at=retry_after_failure(subscription, now))
    finally:
        body.unlink(missing_ok=True)
        fetch.finished_at = timezone.now()
        fetch.save()
        FeedSubscription.objects.filter(pk=subscription.pk).update(**changes)
    record("feed.fetch", campaign_id=subscription.campaign_id, obj=fetch,
           data={"subscription": subscription.pk, "outcome": fetch.outcome,
                 "http_status": fetch.http_status, "error": fetch.error[:300],
                 "import": fetch.feed_import_id})
    return fetch
