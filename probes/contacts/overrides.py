"""A host's abuse contact set by hand: kept, with who and why (ContactOverride), through
every later look-up."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from campaign import states
from campaign.addresses import AddressRejected, parse_ip
from campaign.audit import record
from campaign.hosts import transition_host
from campaign.models import Campaign, Host
from campaign.roles import has_perm
from probes.contacts.errors import ContactError
from probes.contacts.languages import language_for_country, normalise_language
from probes.contacts.models import Contact, ContactOverride
from probes.contacts.records import MANUAL, clean_email
from probes.contacts.selectors import SuppressionList


def _host_in(campaign: Campaign, ip_text: str) -> Host:
    try:
        ip = str(parse_ip(ip_text.strip()))
    except AddressRejected:
        raise ContactError(f"{ip_text!r} is not an IP address") from None
    host = Host.objects.filter(campaign=campaign, ip=ip).first()
    if host is None:
        raise ContactError(f"campaign {campaign.slug} has no host {ip}")
    return host


def set_contact(
    *, campaign: Campaign, ip: str, email: str, actor, reason: str, language: str | None = None
) -> Contact:
    """Set a host's contact by hand; kept (with who and why) through later look-ups."""
    if actor is None or not has_perm(actor, "resolve_contacts"):
        raise PermissionDenied(f"{actor} may not set abuse contacts")
    if not reason or not reason.strip():
        raise ContactError("say why (--reason): a hand-set contact must be explained")
    address = clean_email(email)
    if address is None:
        raise ContactError(f"{email!r} is not a usable e-mail address")
    hit = SuppressionList.load().match(address)
    if hit is not None:
        raise ContactError(f"{address} is on the do-not-contact list ({hit})")
    lang = None
    if language:
        try:
            lang = normalise_language(language)
        except ValueError as exc:
            raise ContactError(str(exc)) from None
    host = _host_in(campaign, ip)
    now = timezone.now()
    with transaction.atomic():
        contact = Contact.objects.select_for_update().filter(host=host).first()
        previous = contact.email if contact else ""
        if contact is None:
            contact = Contact(host=host, country=host.country)
        contact.status = Contact.RESOLVED
        contact.email = address
        contact.source = "manual"
        contact.confidence = MANUAL
        contact.server = ""
        contact.handle = ""
        contact.manual = True
        contact.overridden_by = actor
        contact.override_reason = reason.strip()
        contact.overridden_at = now
        contact.fetched_at = now
        contact.attempts = 0
        contact.next_attempt_at = None
        contact.last_error = ""
        contact.updated_at = now
        if lang:
            contact.language = lang
            contact.language_overridden = True
        elif not contact.language_overridden:
            contact.language = language_for_country(contact.country or host.country)
        contact.save()
        ContactOverride.objects.create(
            host=host, email=address, language=lang or "", previous_email=previous,
            created_by=actor, reason=reason.strip(), created_at=now,
        )
        record("contact.override", actor=actor, campaign_id=campaign.pk, obj=host,
               data={"ip": host.ip, "email": address, "previous": previous,
                     "language": contact.language, "reason": reason.strip()})
        if states.can_transition(host.state, states.CONTACT_RESOLVED):
            transition_host(host, states.CONTACT_RESOLVED, actor=actor,
                            reason=f"contact set by hand: {reason.strip()}")
    return contact
