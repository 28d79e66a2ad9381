"""How the letters fared: delivered, bounced (for good or for now), complained about,
answered by people or by machines, and how often the fallback chain had to find another
address; and which registries' contact data bounces most, so analysts learn whose data is
stale. Counted over the letters the viewer's agency may see (a joint campaign's share)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q

from campaign.models import Campaign
from letters import states
from letters.models import InboundMessage, LetterEvent, LetterHost
from letters.pages import visible_letters
from probes.contacts.models import Contact


@dataclass(frozen=True)
class RegistryRow:
    registry: str  # the server that answered for the hosts' networks ("" if none)
    sent: int
    bounced: int

    @property
    def bounce_rate(self) -> float:
        return round(self.bounced / self.sent, 4) if self.sent else 0.0


def deliverability(campaign: Campaign, user=None) -> dict:
    letters = visible_letters(campaign, user)
    posted = letters.filter(channel=states.POSTAL).aggregate(
        posted=Count("id", filter=Q(posted_at__isnull=False)),
        returned=Count("id", filter=Q(returned_at__isnull=False)))
    sent = letters.filter(sent_at__isnull=False, channel=states.EMAIL)
    by_state = dict(sent.order_by().values_list("state").annotate(n=Count("id")))
    inbound = dict(
        InboundMessage.objects.filter(letter__in=sent).order_by().values_list("kind")
        .annotate(n=Count("letter", distinct=True)))
    deferred = (LetterEvent.objects.filter(letter__in=sent, event_type="deferred")
                .values("letter").distinct().count())
    hosts = LetterHost.objects.filter(letter__in=sent, dropped=False).values("host")
    no_contact = Q(status=Contact.NO_CONTACT)
    fallbacks = (Contact.objects.filter(host__in=hosts).exclude(fallbacks=[]).aggregate(
        hosts=Count("id"), postal_next=Count("id", filter=no_contact),
        postal_known=Count("id", filter=no_contact & ~Q(postal_address=""))))
    totals = sent.aggregate(
        sent=Count("id"),
        delivered=Count("id", filter=Q(delivered_at__isnull=False) | Q(state=states.DELIVERED)))
    return {
        **totals,
        "bounced": by_state.get(states.BOUNCED, 0),
        "temporary": deferred,
        "complaints": by_state.get(states.COMPLAINED, 0),
        "auto_replies": inbound.get(InboundMessage.AUTO_REPLY, 0),
        "replies": inbound.get(InboundMessage.REPLY, 0),
        "fallback_hosts": fallbacks["hosts"],
        "postal_next": fallbacks["postal_next"],
        "postal_known": fallbacks["postal_known"],
        "postal_posted": posted["posted"],
        "postal_returned": posted["returned"],
        "registries": registry_rows(sent),
    }


def registry_rows(sent) -> list[RegistryRow]:
    """Letters sent and bounced per registry server that gave their hosts' contacts, the
    worst first."""
    rows = (LetterHost.objects.filter(letter__in=sent, dropped=False)
            .values("host__contact__network__server")
            .annotate(sent=Count("letter", distinct=True),
                      bounced=Count("letter", distinct=True,
                                    filter=Q(letter__state=states.BOUNCED)))
            .order_by())
    found = [RegistryRow(r["host__contact__network__server"] or "", r["sent"], r["bounced"])
             for r in rows]
    return sorted(found, key=lambda r: (-r.bounce_rate, -r.sent, r.registry))
