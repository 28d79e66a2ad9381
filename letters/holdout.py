"""The control group: a reproducible share of a campaign's contacts that is never written to.

Without a baseline a remediation rate says nothing (hosts left alone get fixed too), so a
campaign may hold out `Campaign.holdout_percent` of its contacts. The draw is by contact (one
owner is either written to or not), a hash of the campaign's seed and the address (anyone can
repeat it), made once at the first batch that would write to the contact and recorded in a
`ContactDraw`. Hosts of held-out contacts become `ControlHost`s, re-tested by the follow-ups
on the notified hosts' schedule (letters/followup.py) and compared in letters/effect.py.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from campaign.models import Campaign
from letters.models import ContactDraw, ControlHost, Letter
from letters.states import FIRST_NOTICE

CHUNK = 5000


def seed_of(campaign: Campaign) -> str:
    # The slug is stable and unique: a campaign without an explicit seed still draws the same.
    return campaign.holdout_seed or campaign.slug


def draw_bucket(seed: str, email: str) -> float:
    """A uniform number in [0, 1) from the seed and the address (case-insensitive)."""
    digest = hashlib.sha256(f"{seed}\n{email.strip().lower()}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def is_drawn_out(seed: str, email: str, percent: int) -> bool:
    return draw_bucket(seed, email) < percent / 100


@dataclass
class Screen:
    """What the control group took out of a batch's findings."""

    kept: list = field(default_factory=list)
    held_out_hosts: int = 0
    held_out_contacts: int = 0


def _chunks(items: list, size: int = CHUNK) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def held_out_emails(campaign: Campaign, emails: Iterable[str]) -> set[str]:
    """The addresses among `emails` whose recorded draw holds them out of `campaign`."""
    wanted = sorted({e.lower() for e in emails})
    found: set[str] = set()
    for part in _chunks(wanted):
        found.update(ContactDraw.objects.filter(campaign=campaign, email__in=part, held_out=True)
                     .values_list("email", flat=True))
    return found


def is_held_out(campaign_id: int, email: str) -> bool:
    return ContactDraw.objects.filter(campaign_id=campaign_id, email=email.lower(),
                                      held_out=True).exists()


def draw_contacts(campaign: Campaign, emails: Iterable[str], *,
                  now: datetime | None = None) -> dict[str, ContactDraw]:
    """email → its draw, drawing (and recording) the contacts not drawn before."""
    now = now or timezone.now()
    wanted = sorted({e.lower() for e in emails})
    draws: dict[str, ContactDraw] = {}
    for part in _chunks(wanted):
        draws.update((d.email, d) for d in
                     ContactDraw.objects.filter(campaign=campaign, email__in=part))
    new = [e for e in wanted if e not in draws]
    if not new or not campaign.holdout_percent:
        # Off: nothing is drawn, so turning it on later draws only contacts not yet written to.
        return draws
    seed = seed_of(campaign)
    percent = campaign.holdout_percent
    already_written = set()
    for part in _chunks(new):
        # A contact written to before the control group began cannot be a control any more.
        already_written.update(
            Letter.objects.filter(campaign=campaign, email__in=part)
            .exclude(state__in=["cancelled", "failed"]).values_list("email", flat=True))
    rows = []
    for email in new:
        bucket = draw_bucket(seed, email)
        if email in already_written:
            held, reason = False, "written to before the control group began"
        elif bucket < percent / 100:
            held, reason = True, f"drawn {bucket:.4f} < {percent}% (seed {seed!r})"
        else:
            held, reason = False, f"drawn {bucket:.4f} >= {percent}% (seed {seed!r})"
        rows.append(ContactDraw(campaign=campaign, email=email, held_out=held, bucket=bucket,
                                percent=percent, reason=reason, drawn_at=now))
    ContactDraw.objects.bulk_create(rows, ignore_conflicts=True)
    for part in _chunks(new):
        draws.update((d.email, d) for d in
                     ContactDraw.objects.filter(campaign=campaign, email__in=part))
    return draws


def screen_findings(campaign: Campaign, findings: list, *, now: datetime | None = None) -> Screen:
    """Take held-out contacts' findings out of a batch; enrol their hosts in the control group.

    Called by the batch builder for every kind of notice, so a held-out contact cannot get a
    first notice, a second notice, or one through a later change of the host's contact.
    """
    now = now or timezone.now()
    draws = draw_contacts(campaign, (f.email for f in findings), now=now)
    screen = Screen()
    held_contacts: set[str] = set()
    control: list[ControlHost] = []
    for finding in findings:
        draw = draws.get(finding.email)
        if draw is not None and draw.held_out:
            held_contacts.add(finding.email)
            screen.held_out_hosts += 1
            if finding.kind == FIRST_NOTICE:
                # A host already written to (its contact changed since) is no control.
                control.append(ControlHost(campaign=campaign, host_id=finding.host_id,
                                           draw=draw, since=now))
        else:
            screen.kept.append(finding)
    screen.held_out_contacts = len(held_contacts)
    # The first batch that held a host out starts its clock; later batches change nothing.
    ControlHost.objects.bulk_create(control, ignore_conflicts=True)
    return screen


def held_out_counts(campaign: Campaign) -> dict:
    """{"contacts": N, "hosts": N, "percent": P} for pages and campaign_status."""
    return {
        "percent": campaign.holdout_percent,
        "contacts": ContactDraw.objects.filter(campaign=campaign, held_out=True).count(),
        "hosts": ControlHost.objects.filter(campaign=campaign).count(),
    }

