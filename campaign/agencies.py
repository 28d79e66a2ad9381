"""Partner agencies: which agency writes to which host of a joint campaign, and who sees what.

A joint campaign has a lead agency (`Campaign.agency`) and partners (`Campaign.partners`).
Each host goes to the agency whose jurisdiction covers its country (the host's own country,
else its contact's); a host no jurisdiction covers goes to the lead. Routing is computed, not
stored: a change of jurisdiction applies to the next batch, while letters already built keep
the agency of their batch (`Batch.agency`).

Hosts, imports and probe and contact runs are the campaign's shared record, seen by every
participating agency; batches and letters belong to one agency and only its staff see them.
Staff of an agency that takes no part see nothing of the campaign (404).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import pycountry
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Case, CharField, Count, F, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce

from campaign import states
from campaign.audit import record
from campaign.models import Agency, Campaign, Host

# --- who is looking ------------------------------------------------------------------------


def viewer_agency_id(user) -> int | None:
    """The agency a user works for; None for superusers and users bound to no agency."""
    if user is None or getattr(user, "is_superuser", False):
        return None
    profile = getattr(user, "staff_profile", None)
    return profile.agency_id if profile is not None else None


def participant_ids(campaign: Campaign) -> set[int]:
    return {campaign.agency_id, *campaign.partners.values_list("pk", flat=True)}


def participants(campaign: Campaign) -> list[Agency]:
    """The lead first, then the partners by name: the order in which jurisdictions win."""
    partners = list(campaign.partners.exclude(pk=campaign.agency_id).order_by("name", "pk"))
    return [campaign.agency, *partners]


def campaigns_q(agency_id: int) -> Q:
    """Q on Campaign: the campaigns an agency leads or takes part in."""
    return Q(agency_id=agency_id) | Q(
        pk__in=Campaign.partners.through.objects.filter(agency_id=agency_id)
        .values("campaign_id")
    )


def batch_scope(user, *, via: str = "") -> Q:
    """Q on Batch (or, with `via`, on a model reaching a batch through it) for what a user's
    agency may see: its own batches, and on campaigns it leads the batches from before
    partner agencies (no agency recorded). Everything for users bound to no agency."""
    agency_id = viewer_agency_id(user)
    return Q() if agency_id is None else agency_batches(agency_id, via=via)


def agency_batches(agency_id: int, *, via: str = "") -> Q:
    """Q on Batch (or through `via`): the batches of one agency, legacy ones included."""
    return Q(**{f"{via}agency_id": agency_id}) | Q(
        **{f"{via}agency__isnull": True, f"{via}campaign__agency_id": agency_id}
    )


def batch_visible(user, campaign: Campaign, batch_agency_id: int | None) -> bool:
    """Whether the user's agency may see a batch of the campaign (and its letters): its own
    batches, the lead's legacy ones (no agency) to the lead; everything to users bound to no
    agency. letters.pages.visible_batch and visible_letter answer 404 when it is False."""
    agency_id = viewer_agency_id(user)
    return agency_id is None or agency_id == (batch_agency_id or campaign.agency_id)


def is_lead(user, campaign: Campaign) -> bool:
    """Whether the user works for the campaign's lead agency (or for no agency at all)."""
    return viewer_agency_id(user) in (None, campaign.agency_id)


def require_lead(user, campaign: Campaign) -> None:
    """Campaign-wide work (imports, probe and contact runs) is the lead agency's to start."""
    if not is_lead(user, campaign):
        raise PermissionDenied(f"only staff of {campaign.agency.name}, the lead agency, "
                               "start campaign-wide work")


def require_routed(user, campaign: Campaign, host: Host) -> None:
    """A partner's staff edit only the hosts routed to their agency; the lead's, any."""
    agency_id = viewer_agency_id(user)
    if agency_id is None or agency_id == campaign.agency_id:
        return
    country = host.country or Host.objects.filter(pk=host.pk).annotate(
        routed_country=effective_country()).values_list("routed_country", flat=True).get()
    if router(campaign).route(country) != agency_id:
        raise PermissionDenied(f"{host.ip} is routed to another agency")


def check_batch_agency(actor, batch) -> None:
    """Each agency reviews and sends its own letters: refuse a person of another agency."""
    agency_id = viewer_agency_id(actor)
    if agency_id is None:
        return
    owner = batch.agency_id or Campaign.objects.values_list("agency_id", flat=True).get(
        pk=batch.campaign_id)
    if agency_id != owner:
        raise PermissionDenied(f"{actor} works for another agency than batch {batch.pk}")


def acting_agency(actor, campaign: Campaign, agency: Agency | None = None) -> Agency:
    """The agency a batch is built for: the builder's own, or (for people bound to no
    agency) the one asked for, else the lead. It must take part in the campaign."""
    ids = participant_ids(campaign)
    own = viewer_agency_id(actor)
    if own is not None:
        if agency is not None and agency.pk != own:
            raise PermissionDenied(f"{actor} may only build batches for their own agency")
        if own not in ids:
            raise PermissionDenied(f"{actor}'s agency takes no part in {campaign.slug}")
        return Agency.objects.get(pk=own)
    if agency is None:
        return campaign.agency
    if agency.pk not in ids:
        raise PermissionDenied(f"{agency.name} takes no part in {campaign.slug}")
    return agency


# --- routing -------------------------------------------------------------------------------


@dataclass
class Router:
    """Country code → agency id for one campaign; unknown countries go to the lead."""

    lead_id: int
    by_country: dict[str, int] = field(default_factory=dict)

    def route(self, country: str | None) -> int:
        return self.by_country.get((country or "").strip().upper(), self.lead_id)

    def countries_of(self, agency_id: int) -> set[str]:
        return {cc for cc, owner in self.by_country.items() if owner == agency_id}


def router(campaign: Campaign) -> Router:
    found = Router(lead_id=campaign.agency_id)
    for agency in participants(campaign):
        for cc in agency.jurisdiction or []:
            # setdefault: the lead, then partners by name, win a country claimed twice.
            found.by_country.setdefault(str(cc).strip().upper(), agency.pk)
    return found


def effective_country() -> Case:
    """The host's country, else its contact's (as the batch builder reads it)."""
    return Case(
        When(country="", then=Coalesce("contact__country", Value(""))),
        default=F("country"), output_field=CharField(),
    )


def routed_hosts(campaign: Campaign, agency: Agency) -> QuerySet[Host]:
    """The hosts of a campaign routed to an agency."""
    route = router(campaign)
    qs = Host.objects.filter(campaign=campaign).annotate(routed_country=effective_country())
    if agency.pk == route.lead_id:
        others = {cc for cc, owner in route.by_country.items() if owner != route.lead_id}
        return qs.exclude(routed_country__in=others) if others else qs
    if agency.pk not in participant_ids(campaign):
        return qs.none()
    return qs.filter(routed_country__in=route.countries_of(agency.pk))


# --- settings ------------------------------------------------------------------------------


def country_code(text: str) -> str:
    code = text.strip().upper()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise ValidationError(f"{text!r} is not an ISO 3166-1 alpha-2 country code")
    return code


@transaction.atomic
def set_agency(*, name: str, country: str | None = None, jurisdiction: list[str] | None = None,
               sender_email: str | None = None, reply_to: str | None = None,
               actor=None) -> Agency:
    """Create or update an agency; only the options given change."""
    name = name.strip()
    if not name:
        raise ValidationError("an agency needs a name")
    agency, created = Agency.objects.select_for_update().get_or_create(name=name)
    changes: dict = {}
    if country is not None:
        changes["country"] = country_code(country) if country.strip() else ""
    if jurisdiction is not None:
        # Sorted and unique, so the JSON and the routing never depend on typing order.
        changes["jurisdiction"] = sorted({country_code(cc) for cc in jurisdiction if cc.strip()})
    for key, value in (("sender_email", sender_email), ("reply_to", reply_to)):
        if value is not None:
            if value:
                validate_email(value)
            changes[key] = value
    for key, value in changes.items():
        setattr(agency, key, value)
    if changes:
        agency.save(update_fields=list(changes))
    if created or changes:
        record("agency.create" if created else "agency.update", actor=actor, obj=agency,
               data={"name": name, **changes})
    return agency


@transaction.atomic
def set_partners(*, campaign: Campaign, names: list[str], actor=None) -> list[Agency]:
    """Make these agencies the campaign's partners (each created if new, like --agency)."""
    wanted = []
    for name in dict.fromkeys(n.strip() for n in names if n.strip()):
        if name == campaign.agency.name:
            raise ValidationError(f"{name} leads {campaign.slug} and cannot also be a partner")
        agency, created = Agency.objects.get_or_create(name=name)
        if created:
            record("agency.create", actor=actor, obj=agency, data={"name": name})
        wanted.append(agency)
    campaign.partners.set(wanted)
    record("campaign.partners", actor=actor, campaign_id=campaign.pk, obj=campaign,
           data={"partners": [a.name for a in wanted]})
    return wanted


# --- the whole operation -------------------------------------------------------------------

NOTIFIED_OR_LATER = frozenset({states.NOTIFIED, states.REMEDIATED})


def operation_summary(campaigns: QuerySet[Campaign] | None = None) -> dict:
    """Per agency, over every campaign it leads or joins: hosts routed, notified, remediated.

    One GROUP BY (country, state) per campaign; routing runs on those groups, not per host.
    """
    campaigns = campaigns if campaigns is not None else Campaign.objects.all()
    totals: dict[int, dict] = defaultdict(lambda: {"campaigns": set(), "hosts_routed": 0,
                                                    "notified": 0, "remediated": 0})
    names: dict[int, str] = {}
    for campaign in campaigns.select_related("agency").order_by("slug"):
        route = router(campaign)
        for agency in participants(campaign):
            names[agency.pk] = agency.name
            totals[agency.pk]["campaigns"].add(campaign.slug)
        rows = (Host.objects.filter(campaign=campaign)
                .annotate(routed_country=effective_country())
                .order_by().values_list("routed_country", "state").annotate(n=Count("id")))
        for country, state, n in rows:
            entry = totals[route.route(country)]
            entry["hosts_routed"] += n
            entry["notified"] += n if state in NOTIFIED_OR_LATER else 0
            entry["remediated"] += n if state == states.REMEDIATED else 0
    agencies = [
        {"agency": names[pk], "campaigns": sorted(entry["campaigns"]),
         "hosts_routed": entry["hosts_routed"], "notified": entry["notified"],
         "remediated": entry["remediated"]}
        for pk, entry in totals.items()
    ]
    agencies.sort(key=lambda row: row["agency"])
    total = {key: sum(row[key] for row in agencies)
             for key in ("hosts_routed", "notified", "remediated")}
    return {"campaigns": campaigns.count(), "agencies": agencies, "total": total}
