"""Cadence: at most one letter per contact within the agency's interval, across its campaigns.

Recipients who get a letter a week from the same agency stop reading them. The batch builder
asks `screen_findings` which contacts must wait (and why, for the batch page); a second
notice simply waits for a later batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db.models import Count, Max, Q
from django.utils import timezone

from campaign.models import Agency, Campaign
from letters import states
from letters.models import Letter

CHUNK = 5000
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# How many waiting contacts a batch lists by name (the count is always complete).
LISTED = 500


@dataclass
class Waiting:
    email: str
    reason: str
    until: datetime | None = None

    def as_json(self) -> dict:
        return {"email": self.email, "reason": self.reason,
                "until": self.until.isoformat() if self.until else None}


@dataclass
class Screen:
    kept: list = field(default_factory=list)
    waiting: list[Waiting] = field(default_factory=list)
    waiting_hosts: int = 0


def _agency_letters(agency: Agency):
    # Batches of a partner agency carry it; older batches belong to their campaign's agency.
    return Letter.objects.filter(
        Q(batch__agency=agency) | Q(batch__agency__isnull=True, campaign__agency=agency)
    ).exclude(state__in=[states.CANCELLED, states.FAILED])


def last_letters(agency: Agency, emails: list[str]) -> dict[str, tuple[datetime | None, int]]:
    """email → (when the agency last sent to it, how many of its letters are still unsent)."""
    found: dict[str, tuple[datetime | None, int]] = {}
    for i in range(0, len(emails), CHUNK):
        rows = (_agency_letters(agency).filter(email__in=emails[i:i + CHUNK])
                .values("email")
                .annotate(last=Max("sent_at"), unsent=Count("id", filter=Q(sent_at__isnull=True)))
                .values_list("email", "last", "unsent"))
        found.update((email, (last, unsent)) for email, last, unsent in rows)
    return found


def screen_findings(campaign: Campaign, findings: list, *, agency: Agency | None = None,
                    now: datetime | None = None) -> Screen:
    """Split findings into those a letter may go to now and the contacts that must wait."""
    agency = agency or campaign.agency
    now = now or timezone.now()
    days = agency.min_days_between_letters
    screen = Screen()
    if not days or not findings:
        screen.kept = list(findings)
        return screen
    interval = timedelta(days=days)
    history = last_letters(agency, sorted({f.email for f in findings}))
    reasons: dict[str, Waiting] = {}
    kind_of: dict[str, str] = {}
    later: dict[str, Waiting] = {}
    for finding in findings:
        email = finding.email
        last, unsent = history.get(email, (None, 0))
        if email not in reasons:
            if unsent:
                reasons[email] = Waiting(email, "a letter to this contact is not sent yet")
            elif last is not None and last + interval > now:
                reasons[email] = Waiting(
                    email, f"written to on {last.date().isoformat()}; the agency writes at "
                           f"most once every {days} days", until=last + interval)
            else:
                reasons[email] = None  # type: ignore[assignment]
        if reasons[email] is None and kind_of.setdefault(email, finding.kind) == finding.kind:
            screen.kept.append(finding)
        else:
            # One letter per contact per batch: a second notice waits for the first to leave.
            screen.waiting_hosts += 1
            if reasons[email] is None:
                later.setdefault(email, Waiting(
                    email, f"a {kind_of[email].replace('_', ' ')} to this contact is in this "
                           "batch; the other notice waits"))
    waits = [w for w in reasons.values() if w is not None] + list(later.values())
    screen.waiting = sorted(waits,
                            key=lambda w: (w.until or now, w.email))
    return screen


def screened_summary(held_out: int, held_out_contacts: int, screen: Screen) -> dict:
    """The JSON a batch keeps about what its builder left out (Batch.screened)."""
    return {
        "held_out": held_out,
        "held_out_contacts": held_out_contacts,
        "waiting": len(screen.waiting),
        "waiting_hosts": screen.waiting_hosts,
        "waiting_contacts": [w.as_json() for w in screen.waiting[:LISTED]],
    }


def valid_time_zone(name: str) -> bool:
    """A zoneinfo name this server knows (what the recipient page accepts)."""
    if not name or name != name.strip() or name.startswith("/") or ".." in name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def business_day_wait(time_zones: Iterable[str], now: datetime) -> Waiting | None:
    """Why a letter to contacts who asked for business days only must wait, and until when.

    None when it is Monday to Friday in every one of their zones; else the reason and the
    latest next-Monday midnight among the zones where it is the weekend.
    """
    waits = []
    for name in sorted(set(time_zones)):
        zone = ZoneInfo(name) if valid_time_zone(name) else ZoneInfo("UTC")
        local = now.astimezone(zone)
        if local.weekday() < 5:
            continue
        monday = local.date() + timedelta(days=7 - local.weekday())
        until = datetime.combine(monday, time(0), tzinfo=zone)
        waits.append((until, name, WEEKDAYS[local.weekday()]))
    if not waits:
        return None
    until, name, day = max(waits)
    return Waiting("", f"the recipient asked for letters on business days only; it is {day} "
                       f"in {name}", until=until)
