"""A campaign's automation policy: which steps the system takes without a person.

Three switches, off by default: probe new hosts as they arrive (probes.auto_probe_new, every
minute), resolve the contacts of verified hosts (probes.resolve_due_contacts, every 10
minutes; retries of a person's run whose registry was down happen either way), and draft a
batch per language every day (letters.draft_daily_batches). Drafts still go through review
and approval by people. Every automatic step is in the audit log with no actor and
`"by": "system"`.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import transaction

from campaign.agencies import is_lead
from campaign.audit import record
from campaign.models import Campaign
from campaign.roles import has_perm

SWITCHES = {
    "probe_new": "auto_probe_new",
    "contacts": "auto_resolve_contacts",
    "daily_batches": "auto_draft_batches",
}


def policy(campaign: Campaign) -> dict[str, bool]:
    return {name: getattr(campaign, field) for name, field in SWITCHES.items()}


def policy_line(campaign: Campaign) -> str:
    return " ".join(f"{name}={'on' if on else 'off'}" for name, on in policy(campaign).items())


def may_change(user, campaign: Campaign) -> bool:
    """Whether the user may set the campaign's automation: an admin of its lead agency."""
    return has_perm(user, "change_campaign") and is_lead(user, campaign)


@transaction.atomic
def set_policy(campaign: Campaign, *, actor=None, **switches: bool | None) -> Campaign:
    """Turn switches on or off (None leaves one as it is); an admin of the lead agency's."""
    if actor is not None and not may_change(actor, campaign):
        raise PermissionDenied(f"{actor} may not change the campaign's automation (an "
                               f"admin of {campaign.agency.name}, the lead agency, may)")
    unknown = set(switches) - set(SWITCHES)
    if unknown:
        raise ValueError(f"unknown automation switch {sorted(unknown)[0]!r}")
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    before = policy(campaign)
    for name, value in switches.items():
        if value is not None:
            setattr(campaign, SWITCHES[name], bool(value))
    after = policy(campaign)
    if after != before:
        campaign.save(update_fields=list(SWITCHES.values()))
        record("campaign.automation", actor=actor, campaign_id=campaign.pk, obj=campaign,
               data={"before": before, "after": after})
    return campaign


def record_system_step(step: str, campaign: Campaign, obj=None, **data) -> None:
    """The audit entry of a step the system took by itself."""
    record(f"automation.{step}", campaign_id=campaign.pk, obj=obj,
           data={"by": "system", **data})
