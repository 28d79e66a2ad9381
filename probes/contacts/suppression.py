"""The do-not-contact list: adding an address or a domain (by hand, or from a bounce or a
complaint), who may take an entry off again, and taking it off.

The list binds every agency's letters; an entry belongs to the agency that asked for it,
and only that agency (or an admin bound to no agency) removes it.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from campaign import states
from campaign.agencies import viewer_agency_id
from campaign.audit import record
from campaign.hosts import bulk_transition
from campaign.models import AuditEvent
from campaign.roles import has_perm
from probes.contacts.errors import ContactError
from probes.contacts.models import Contact, Suppression
from probes.contacts.records import clean_email
from probes.contacts.selectors import SuppressionList


def suppress(
    *, value: str, actor, reason: str, source: str = "manual", agency_id: int | None = None
) -> Suppression:
    """Add an address or a domain to the do-not-contact list.

    Contacts already resolved to it are marked suppressed and their hosts, if not yet
    written to, leave the letter queue (contact_resolved → no_contact). `agency_id` is whose
    entry it is (default: the acting user's agency) and only decides who sees it listed.
    """
    if agency_id is None:
        agency_id = viewer_agency_id(actor)
    if source == "manual" and (actor is None or not has_perm(actor, "resolve_contacts")):
        raise PermissionDenied(f"{actor} may not edit the do-not-contact list")
    if not reason or not reason.strip():
        raise ContactError("say why (--reason): the do-not-contact list must be explained")
    normal, kind = _suppression_value(value)
    with transaction.atomic():
        entry, created = Suppression.objects.get_or_create(
            value=normal, defaults={"kind": kind, "reason": reason.strip(), "source": source,
                                    "created_by": actor if getattr(actor, "pk", None) else None,
                                    "agency_id": agency_id},
        )
        # Every request is recorded with its agency, also one for a value already listed:
        # the entry stays one row, but an agency that asked for the same stop must not see it
        # undone by the agency that happened to ask first (may_remove_suppression).
        if created or agency_id != entry.agency_id:
            record("contact.suppress", actor=actor, obj=entry,
                   data={"value": normal, "kind": kind, "reason": reason.strip(),
                         "source": source, "agency_id": agency_id,
                         "already_listed": not created})
        listing = SuppressionList([entry])
        hits = [
            (c.pk, c.host_id) for c in Contact.objects.filter(status=Contact.RESOLVED)
            .filter(email__iendswith=normal if kind == Suppression.DOMAIN else normal)
            .only("pk", "host_id", "email")
            if listing.matches(c.email)
        ]
        if hits:
            Contact.objects.filter(pk__in=[pk for pk, _ in hits]).update(
                status=Contact.SUPPRESSED, last_error=f"on the do-not-contact list: {normal}",
                updated_at=timezone.now(),
            )
            bulk_transition([host_id for _, host_id in hits], states.NO_CONTACT,
                            f"contact suppressed: {normal}", actor=actor)
    return entry


def _suppression_value(value: str) -> tuple[str, str]:
    """(normalised value, kind) of an address or a domain, else ContactError."""
    text = (value or "").strip().lower()
    if "@" in text:
        normal = clean_email(text)
        kind = Suppression.ADDRESS
    else:
        normal = _clean_domain(text)
        kind = Suppression.DOMAIN
    if not normal:
        raise ContactError(f"{value!r} is neither an e-mail address nor a domain name")
    return normal, kind


def may_remove_suppression(actor, entry: Suppression) -> bool:
    """Only the agency that made an entry takes it off again, or an admin bound to none.

    The list binds every agency's letters, so one agency must not undo another's "stop".
    """
    if actor is None or not has_perm(actor, "resolve_contacts"):
        return False
    agency_id = viewer_agency_id(actor)
    if agency_id is None and has_perm(actor, "change_campaign"):
        return True
    # Staff bound to no agency (not admins) remove nothing: `None == None` would give them
    # every installation-wide entry, the admins' own included.
    if agency_id is None or entry.agency_id != agency_id:
        return False
    return not suppression_requested_by_others(entry, agency_id)


def suppression_requested_by_others(entry: Suppression, agency_id: int | None) -> bool:
    """Whether an agency other than `agency_id` (or an installation-wide request, `None`)
    also asked for this entry (suppress() records each request with its agency)."""
    requests = AuditEvent.objects.filter(
        action="contact.suppress", object_type="suppression", object_id=str(entry.pk),
        data__has_key="agency_id",
    ).values_list("data__agency_id", flat=True)
    return any(requested != agency_id for requested in requests)


@dataclass
class Unsuppressed:
    value: str
    kind: str
    contacts: int  # contacts usable again
    hosts: int  # hosts back from no_contact to contact_resolved

    @property
    def line(self) -> str:
        return (f"removed={self.value} kind={self.kind} contacts={self.contacts} "
                f"hosts={self.hosts}")


def unsuppress(*, value: str, actor, reason: str) -> Unsuppressed:
    """Take an entry off the do-not-contact list (audited, with the entry as it was).

    Contacts it suppressed that no other entry covers are usable again, and their hosts that
    it moved out of the letter queue come back (no_contact → contact_resolved).
    """
    if not reason or not reason.strip():
        raise ContactError("say why (--reason): removing an entry must be explained")
    normal, _kind = _suppression_value(value)
    with transaction.atomic():
        entry = (Suppression.objects.select_for_update(of=("self",))
                 .select_related("agency", "created_by").filter(value=normal).first())
        if entry is None:
            raise ContactError(f"{normal} is not on the do-not-contact list")
        if not may_remove_suppression(actor, entry):
            if entry.agency_id and suppression_requested_by_others(entry, entry.agency_id):
                owner = "an administrator bound to no agency (several agencies asked for it)"
            else:
                owner = (entry.agency.name if entry.agency
                         else "an administrator bound to no agency")
            raise PermissionDenied(
                f"{actor or 'nobody'} may not remove {normal}: only {owner} may")
        was = {"value": entry.value, "kind": entry.kind, "reason": entry.reason,
               "source": entry.source, "agency": entry.agency.name if entry.agency else None,
               "created_by": entry.created_by.get_username() if entry.created_by else None,
               "created_at": entry.created_at.isoformat()}
        removed = SuppressionList([entry])
        remaining = SuppressionList(Suppression.objects.exclude(pk=entry.pk))
        freed = [
            (c.pk, c.host_id) for c in Contact.objects.filter(status=Contact.SUPPRESSED)
            .filter(email__iendswith=normal).only("pk", "host_id", "email")
            if removed.matches(c.email) and not remaining.matches(c.email)
        ]
        hosts = 0
        if freed:
            Contact.objects.filter(pk__in=[pk for pk, _ in freed]).update(
                status=Contact.RESOLVED, last_error="", updated_at=timezone.now())
            hosts = bulk_transition([host_id for _, host_id in freed], states.CONTACT_RESOLVED,
                                    f"taken off the do-not-contact list: {normal}",
                                    actor=actor, sources=[states.NO_CONTACT])
        # The audit event keeps the entry as it was: the row itself goes.
        record("contact.unsuppress", actor=actor, obj=entry,
               data={**was, "removal_reason": reason.strip(), "contacts": len(freed),
                     "hosts": hosts})
        entry.delete()
    return Unsuppressed(value=normal, kind=was["kind"], contacts=len(freed), hosts=hosts)


def _clean_domain(text: str) -> str | None:
    domain = text.strip().strip(".").lower()
    if domain.startswith("@"):
        domain = domain[1:]
    probe = clean_email(f"x@{domain}")
    return probe.split("@", 1)[1] if probe else None
