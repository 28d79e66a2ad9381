"""The next way to reach a host's owner when its abuse address bounces for good.

The chain, in order, each step skipping addresses already tried or on the do-not-contact
list:

1. the registry's abuse address (the contact the look-up chose);
2. the other e-mail addresses of the same registry answer: technical, NOC, administrative,
   registrant, in that order (RDAP entity roles; WHOIS tech-c, admin-c, e-mail lines);
3. `abuse@` of the network's own registered domain (RFC 2142's mailbox), taken from the
   domains of the addresses above, each cut to what its owner registered (Public Suffix List:
   `noc@mail.isp.co.uk` gives `abuse@isp.co.uk`);
4. none left: the contact becomes `no_contact` and says a postal letter is next, with the
   postal address of the registry answer (probes.contacts.postal) when it holds one;
5. the post brings that letter back (`postal_returned`): no way is left, and staff see so.

Each step is kept on the contact (`Contact.fallbacks`) with why it was taken, and audited.
The host goes back to `contact_resolved` so the next batch writes to the new address, still
built, reviewed and approved by people (four eyes).
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import asdict, dataclass

from django.db import transaction
from django.utils import timezone
from publicsuffixlist import PublicSuffixList

from campaign import states as host_states
from campaign.audit import record
from campaign.hosts import transition_host
from probes.contacts import rdap, whois
from probes.contacts.models import Contact, NetworkRecord
from probes.contacts.postal import postal_address
from probes.contacts.records import clean_email
from probes.contacts.selectors import SuppressionList

log = logging.getLogger(__name__)

ROLE_ORDER = ("abuse", "technical", "noc", "administrative", "registrant")
POSTAL_NEXT = "every e-mail address of the chain bounced or is suppressed: a postal letter is next"


@dataclass
class Step:
    email: str
    role: str
    source: str  # rdap, whois, domain
    why: str


def _registry_steps(network: NetworkRecord) -> list[Step]:
    """Every address of the stored registry answer, abuse first, then the other roles."""
    if not network.raw:
        return []
    try:
        if network.source == "rdap":
            answer = rdap.parse_ip_network(json.loads(network.raw), all_roles=True)
        elif network.source == "whois":
            ip = (network.evidence or {}).get("queried") or network.start_address
            answer = whois.extract(whois.parse(network.raw), ip=ip, all_roles=True)
        else:
            return []
    except Exception:  # a stored answer we can no longer read: this step has nothing
        log.warning("cannot re-read the %s answer of network %s", network.source, network.pk)
        return []
    rank = {role: i for i, role in enumerate(ROLE_ORDER)}
    found = sorted(answer.candidates, key=lambda c: rank.get(c.role, len(ROLE_ORDER)))
    return [Step(c.email, c.role, network.source,
                 f"{c.role} address in the {network.source.upper()} record of "
                 f"{network.display_range}") for c in found if clean_email(c.email)]


@functools.cache
def _suffixes() -> PublicSuffixList:
    return PublicSuffixList()  # the list the package ships: read once, never fetched


def registered_domain(domain: str) -> str:
    """The domain its owner registered (`noc.mail.bt.co.uk` → `bt.co.uk`, by the Public
    Suffix List): where RFC 2142's abuse mailbox is. "" for a bare public suffix."""
    domain = domain.strip().strip(".").lower()
    if not domain:
        return ""
    return _suffixes().privatesuffix(domain) or ""


def chain_for(contact: Contact) -> list[Step]:
    """The contact's whole chain of addresses, in the order they are tried."""
    steps = _registry_steps(contact.network) if contact.network_id else []
    domains: list[str] = []
    for email in [contact.email] + [s.email for s in steps]:
        domain = registered_domain(email.rpartition("@")[2])
        if domain and domain not in domains:
            domains.append(domain)
    steps += [Step(f"abuse@{d}", "abuse_mailbox", "domain",
                   f"RFC 2142 abuse mailbox of {d}, the network's own domain") for d in domains]
    seen: set[str] = set()
    unique = []
    for step in steps:
        if step.email.lower() not in seen:
            seen.add(step.email.lower())
            unique.append(step)
    return unique


@transaction.atomic
def fall_back(contact: Contact, *, failed_email: str, reason: str) -> Step | None:
    """Move the contact to the next address of its chain after `failed_email` bounced for
    good; None (and the contact `no_contact`, postal next) when the chain is used up."""
    # Locks the contact row only (the network may be null: not part of the lock).
    contact = (Contact.objects.select_for_update(of=("self",))
               .select_related("network", "host").get(pk=contact.pk))
    if contact.manual:
        # Staff chose this address: they choose the next one too (the bounce shows them).
        return None
    if contact.email.lower() != failed_email.lower():
        return None  # the contact moved on already (another bounce, staff): nothing to do
    tried = {failed_email.lower()} | {h.get("email", "").lower() for h in contact.fallbacks}
    tried.add(contact.email.lower())
    suppressed = SuppressionList.load()
    now = timezone.now()
    nxt = next((s for s in chain_for(contact)
                if s.email.lower() not in tried and not suppressed.matches(s.email)), None)
    history = list(contact.fallbacks)
    host = contact.host
    if nxt is None:
        postal = postal_address(contact.network)
        why = (f"{POSTAL_NEXT}, to the address in the {postal.source.upper()} record "
               f"({postal.role})" if postal else f"{POSTAL_NEXT}, but the registry's answer "
               "holds no postal address either")
        history.append({"email": "", "role": "postal", "source": postal.source if postal else "",
                        "why": why, "replaced": contact.email, "reason": reason,
                        "at": now.isoformat()})
        Contact.objects.filter(pk=contact.pk).update(
            status=Contact.NO_CONTACT, fallbacks=history, last_error=why[:500],
            postal_address=postal.text if postal else "", updated_at=now)
        if host.state in (host_states.NOTIFIED, host_states.CONTACT_RESOLVED):
            transition_host(host, host_states.NO_CONTACT, reason=f"{reason}; {POSTAL_NEXT}",
                            after_bounce=True)
        record("contact.fallback_exhausted", campaign_id=host.campaign_id, obj=host,
               data={"bounced": failed_email, "reason": reason})
        return None
    history.append({**asdict(nxt), "replaced": contact.email, "reason": reason,
                    "at": now.isoformat()})
    Contact.objects.filter(pk=contact.pk).update(
        email=nxt.email, source=nxt.source, confidence="low", fallbacks=history,
        status=Contact.RESOLVED, updated_at=now)
    if host.state == host_states.NOTIFIED:
        transition_host(host, host_states.CONTACT_RESOLVED, after_bounce=True,
                        reason=f"{reason}; next contact {nxt.email} ({nxt.why})")
    record("contact.fallback", campaign_id=host.campaign_id, obj=host,
           data={"bounced": failed_email, "next": nxt.email, "role": nxt.role,
                 "why": nxt.why, "reason": reason})
    return nxt


NO_WAY_LEFT = "the postal letter came back too: no way is left to reach the owner"


@transaction.atomic
def postal_returned(contact: Contact, *, address: str, reason: str,
                    first_notice: bool) -> None:
    """The post returned a letter sent to `address`: that address is no way to reach the
    owner either. The host of a returned first notice was notified by nobody: back to
    `no_contact`, which staff see with why (a person may set a contact by hand)."""
    contact = (Contact.objects.select_for_update(of=("self",)).select_related("host")
               .get(pk=contact.pk))
    now = timezone.now()
    history = [*contact.fallbacks, {
        "email": "", "role": "postal", "source": "post", "why": NO_WAY_LEFT,
        "replaced": address, "reason": reason, "at": now.isoformat()}]
    fields = {"fallbacks": history, "updated_at": now}
    if " ".join(contact.postal_address.split()) == " ".join(address.split()):
        fields.update(postal_address="", last_error=f"{NO_WAY_LEFT} ({reason})"[:1000])
    Contact.objects.filter(pk=contact.pk).update(**fields)
    host = contact.host
    if first_notice and host.state == host_states.NOTIFIED:
        transition_host(host, host_states.NO_CONTACT, reason=f"postal letter returned: {reason}",
                        after_bounce=True)
    record("contact.postal_returned", campaign_id=host.campaign_id, obj=host,
           data={"address": address, "reason": reason})
