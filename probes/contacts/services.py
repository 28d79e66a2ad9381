"""Writes for abuse contacts: resolving hosts, hand-set contacts, the suppression list and
the RDAP bootstrap snapshot. Commands, tasks and views call these."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urljoin

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from campaign import outbound, states
from campaign.addresses import AddressRejected, parse_ip
from campaign.audit import record
from campaign.hosts import fill_countries, transition_host, transition_hosts
from campaign.models import AuditEvent, Campaign, Host
from campaign.roles import has_perm
from probes.contacts import rdap, whois
from probes.contacts.clients import (
    FAILED,
    FOUND,
    ContactLookup,
    QueryCounter,
    RateLimiter,
    RdapClient,
    Resolution,
    WhoisClient,
)
from probes.contacts.languages import language_for_country, normalise_language
from probes.contacts.models import (
    Contact,
    ContactOverride,
    ContactRun,
    NetworkRecord,
    Suppression,
    covering_network,
)
from probes.contacts.records import MANUAL, NetworkInfo, clean_email
from probes.contacts.selectors import SuppressionList

log = logging.getLogger(__name__)

SNAPSHOT_DIR = Path(__file__).resolve().parent / "data"
BOOTSTRAP_FILES = ("ipv4.json", "ipv6.json")
BOOTSTRAP_MAX_BYTES = 2 * 1024 * 1024
CHUNK = 1000
# Retry delays for hosts whose look-up failed for now: 10 min, 40 min, 2.7 h, … up to a day.
RETRY_BASE = timedelta(minutes=10)
RETRY_MAX = timedelta(days=1)
PROVISIONAL_DAYS = 1


class ContactError(Exception):
    """A request a person made that cannot be carried out; the message says why."""


# --- the bootstrap snapshot ----------------------------------------------------------------


def bootstrap_dir() -> Path:
    return Path(getattr(settings, "RDAP_BOOTSTRAP_DIR", None) or settings.VAR_DIR / "rdap")


def load_bootstrap() -> rdap.Bootstrap:
    """The refreshed copy if there is a valid one, else the snapshot shipped in the repo."""
    for directory in (bootstrap_dir(), SNAPSHOT_DIR):
        try:
            docs = [json.loads((directory / name).read_text("utf-8")) for name in BOOTSTRAP_FILES]
            return rdap.Bootstrap(docs)
        except (OSError, ValueError) as exc:
            if directory != SNAPSHOT_DIR and (directory / BOOTSTRAP_FILES[0]).exists():
                log.warning("ignoring the stored RDAP bootstrap in %s: %s", directory, exc)
    raise ContactError("no usable RDAP bootstrap file (the shipped snapshot is missing)")


def refresh_bootstrap() -> dict[str, int]:
    """Fetch ipv4.json and ipv6.json from RDAP_BOOTSTRAP_URL; store them only if both parse.

    Returns the number of address blocks each file lists. The shipped snapshot stays as the
    fall-back whatever happens here.
    """
    base = settings.RDAP_BOOTSTRAP_URL
    base = base if base.endswith("/") else base + "/"
    fetched: dict[str, bytes] = {}
    counts: dict[str, int] = {}
    for name in BOOTSTRAP_FILES:
        url = urljoin(base, name)
        with tempfile.TemporaryFile() as tmp:
            try:
                outbound.fetch_url_to_file(url, tmp, max_bytes=BOOTSTRAP_MAX_BYTES,
                                           timeout=max(settings.PROBE_TIMEOUT, 10.0))
            except outbound.FetchError as exc:
                raise ContactError(f"could not fetch {url}: {exc}") from None
            tmp.seek(0)
            body = tmp.read()
        try:
            document = json.loads(body.decode("utf-8"))
            bootstrap = rdap.Bootstrap([document])
        except (UnicodeDecodeError, ValueError) as exc:
            raise ContactError(f"{url} is not a valid RDAP bootstrap file: {exc}") from None
        fetched[name] = body
        counts[name] = bootstrap.block_count
    directory = bootstrap_dir()
    directory.mkdir(parents=True, exist_ok=True)
    for name, body in fetched.items():
        fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{name}.")
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
        os.replace(tmp_name, directory / name)  # atomic: readers see old or new, never half
    record("contacts.bootstrap_refresh", data={"url": base, "blocks": counts})
    return counts


def build_lookup(counter: QueryCounter | None = None) -> ContactLookup:
    counter = counter or QueryCounter()
    limiter = RateLimiter(per_second=float(getattr(settings, "CONTACT_LOOKUPS_PER_SECOND", 10)))
    timeout = float(settings.PROBE_TIMEOUT)
    start = whois.parse_server(settings.WHOIS_IANA_SERVER)
    if start is None:
        raise ContactError(f"WHOIS_IANA_SERVER={settings.WHOIS_IANA_SERVER!r} is not host[:port]")
    return ContactLookup(
        RdapClient(load_bootstrap(), timeout=timeout, limiter=limiter, counter=counter),
        WhoisClient(start, timeout=timeout, limiter=limiter, counter=counter),
        counter,
    )


# --- resolving hosts -----------------------------------------------------------------------


@dataclass
class ResolveSummary:
    hosts: int = 0
    resolved: int = 0
    failed: int = 0
    queries: int = 0

    @property
    def line(self) -> str:
        return (f"hosts={self.hosts} resolved={self.resolved} failed={self.failed} "
                f"queries={self.queries}")


def cache_days() -> float:
    return float(getattr(settings, "CONTACT_CACHE_DAYS", 30))


def _retry_delay(attempts: int) -> timedelta:
    return min(RETRY_MAX, RETRY_BASE * (4 ** max(0, attempts - 1)))


def select_hosts(campaign: Campaign, mode: str) -> list[tuple[int, str, str, str]]:
    """(id, ip, state, country) of the hosts a run covers."""
    qs = Host.objects.filter(campaign=campaign)
    if mode != ContactRun.ALL:
        qs = qs.filter(state=states.VERIFIED_OPEN)
    if mode == ContactRun.DUE:
        now = timezone.now()
        qs = qs.filter(
            Q(contact__isnull=True)
            | Q(contact__status=Contact.FAILED, contact__next_attempt_at__lte=now)
            | Q(contact__status=Contact.FAILED, contact__next_attempt_at__isnull=True)
        )
    return list(qs.values_list("id", "ip", "state", "country"))


class _NetworkCache:
    """Which stored answer covers an address: the last one used, else the database."""

    def __init__(self) -> None:
        self.current: NetworkRecord | None = None
        self.now = timezone.now()

    def find(self, ip_text: str) -> NetworkRecord | None:
        if self.current is not None and self.current.holds(ipaddress.ip_address(ip_text)):
            return self.current
        # The most specific stored answer: the latest start, then the earliest end.
        found = (
            NetworkRecord.objects.filter(
                network__covers=ip_text, start_address__lte=ip_text, end_address__gte=ip_text,
                expires_at__gt=self.now,
            )
            .order_by("-start_address", "end_address")
            .first()
        )
        if found is not None:
            self.current = found
        return found

    def store(self, ip_text: str, resolution: Resolution) -> NetworkRecord:
        net = resolution.network or NetworkInfo()
        if net.cacheable_for(ip_text):
            start, end = net.start, net.end
        else:
            # An answer whose range does not hold the address (or spans a whole RIR block)
            # answers for this address only.
            start = end = ip_text
        answer = resolution.answer
        best = answer.best() if answer is not None and resolution.status == FOUND else None
        days = PROVISIONAL_DAYS if resolution.provisional else cache_days()
        record_ = NetworkRecord.objects.create(
            network=covering_network(start, end),
            start_address=start,
            end_address=end,
            cidrs=net.cidrs[:64],
            name=net.name,
            handle=net.handle,
            parent_handle=net.parent_handle,
            country=net.country,
            organisation=net.organisation,
            status=NetworkRecord.FOUND if best else NetworkRecord.NO_CONTACT,
            email=best.email if best else "",
            confidence=best.confidence if best else "",
            role=best.role if best else "",
            contact_handle=best.handle[:100] if best else "",
            candidates=[
                {"email": c.email, "confidence": c.confidence, "role": c.role, "handle": c.handle}
                for c in (answer.candidates[:20] if answer else [])
            ],
            source=answer.source if answer else "",
            server=(answer.server if answer else "")[:300],
            raw=answer.raw if answer else "",
            evidence={"errors": resolution.errors, "whois_chain": resolution.whois_chain,
                      "queried": ip_text, "provisional": resolution.provisional},
            fetched_at=self.now,
            expires_at=self.now + timedelta(days=days),
        )
        self.current = record_
        return record_


def _address_order(ip_text: str) -> tuple[int, int]:
    ip = ipaddress.ip_address(ip_text)
    return ip.version, int(ip)


def resolve_hosts(
    campaign: Campaign,
    *,
    mode: str = ContactRun.PENDING,
    lookup: ContactLookup | None = None,
    progress: Callable[[int, int, ResolveSummary], None] | None = None,
) -> ResolveSummary:
    """Resolve the abuse contact of each selected host, one registry look-up per network.

    Hosts are taken in address order, so the hosts of one network follow each other and
    the network answer just fetched (or found in the cache) serves all of them.
    """
    rows = select_hosts(campaign, mode)
    rows.sort(key=lambda row: _address_order(row[1]))
    summary = ResolveSummary(hosts=len(rows))
    own_lookup = lookup is None
    lookup = lookup or build_lookup()
    try:
        cache = _NetworkCache()
        suppressed = SuppressionList.load()
        done = 0
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start:start + CHUNK]
            _resolve_chunk(chunk, lookup, cache, suppressed, summary, campaign_id=campaign.pk)
            done += len(chunk)
            summary.queries = lookup.counter.total
            if progress is not None:
                progress(done, len(rows), summary)
    finally:
        if own_lookup:
            lookup.close()
    summary.queries = lookup.counter.total
    return summary


def _resolve_chunk(
    chunk: list[tuple[int, str, str, str]],
    lookup: ContactLookup,
    cache: _NetworkCache,
    suppressed: SuppressionList,
    summary: ResolveSummary,
    *,
    campaign_id: int,
) -> None:
    now = timezone.now()
    countries = {row[0]: row[3] for row in chunk}  # the host's own (feed) country
    existing = {
        c.host_id: c for c in Contact.objects.filter(host_id__in=[row[0] for row in chunk])
    }
    upserts: list[Contact] = []
    to_resolved: list[int] = []
    to_no_contact: list[int] = []
    for host_id, ip_text, _state, host_country in chunk:
        old = existing.get(host_id)
        if old is not None and old.manual:
            # Staff set this contact by hand: keep it, whatever the registries say now.
            if old.status == Contact.RESOLVED:
                summary.resolved += 1
                to_resolved.append(host_id)
            else:
                summary.failed += 1
            continue
        network = cache.find(ip_text)
        error = ""
        if network is None:
            try:
                resolution = lookup.resolve(ip_text)
            except Exception as exc:  # a parser bug on hostile input must not end the run
                log.exception("contact look-up for %s crashed", ip_text)
                resolution = Resolution(FAILED, errors=[f"internal error: {exc}"[:300]])
            if resolution.status == FAILED:
                error = resolution.error or "look-up failed"
            else:
                network = cache.store(ip_text, resolution)
        contact = _contact_for(host_id, host_country, network, old, now, error, suppressed)
        upserts.append(contact)
        if contact.status == Contact.RESOLVED:
            summary.resolved += 1
            to_resolved.append(host_id)
        else:
            summary.failed += 1
            if contact.status in (Contact.NO_CONTACT, Contact.SUPPRESSED):
                to_no_contact.append(host_id)
    with transaction.atomic():
        Contact.objects.bulk_create(
            upserts, update_conflicts=True, unique_fields=["host"],
            update_fields=[
                "network", "status", "email", "organisation", "country", "language", "source",
                "server", "handle", "confidence", "fetched_at", "attempts", "last_error",
                "next_attempt_at", "updated_at",
            ],
        )
        _bulk_transition(to_resolved, states.CONTACT_RESOLVED, "abuse contact resolved")
        _bulk_transition(to_no_contact, states.NO_CONTACT, "no usable abuse contact")
        # Hosts the feed gave no country take their network's (dashboard, host page, report).
        if upserts:
            fill_countries(campaign_id, {c.host_id: c.country for c in upserts
                                         if c.country and not countries[c.host_id]})


def _contact_for(
    host_id: int,
    host_country: str,
    network: NetworkRecord | None,
    old: Contact | None,
    now,
    error: str,
    suppressed: SuppressionList,
) -> Contact:
    contact = Contact(host_id=host_id, updated_at=now)
    keep_language = old is not None and old.language_overridden
    if network is None:
        # Temporary failure: keep what we knew, count the attempt, try again later.
        attempts = (old.attempts if old else 0) + 1
        for name in ("network_id", "email", "organisation", "country", "language", "source",
                     "server", "handle", "confidence", "fetched_at"):
            if old is not None:
                setattr(contact, name, getattr(old, name))
        contact.status = Contact.FAILED
        contact.attempts = attempts
        contact.last_error = error
        contact.next_attempt_at = now + _retry_delay(attempts)
        if not keep_language:
            contact.language = language_for_country(contact.country or host_country)
        return contact
    country = network.country or host_country
    contact.network = network
    contact.organisation = network.organisation
    contact.country = country
    contact.language = old.language if keep_language else language_for_country(country)
    contact.source = network.source
    contact.server = network.server
    contact.handle = network.contact_handle or network.handle
    contact.confidence = network.confidence
    contact.fetched_at = network.fetched_at
    contact.attempts = 0
    contact.next_attempt_at = None
    contact.email = network.email
    if not network.email:
        contact.status = Contact.NO_CONTACT
        contact.last_error = "; ".join(network.evidence.get("errors", []))[:1000]
    elif suppressed.matches(network.email):
        contact.status = Contact.SUPPRESSED
        contact.last_error = f"{network.email} is on the do-not-contact list"
    else:
        contact.status = Contact.RESOLVED
        contact.last_error = ""
    return contact


def _bulk_transition(host_ids: list[int], target: str, reason: str, *, actor=None,
                     sources: Iterable[str] | None = None) -> int:
    """Move the hosts that may go to `target` (from `sources` only, if given); audited.

    One audit event per campaign, not per host: a million-host campaign stays writable, and
    a suppression (which spans campaigns) shows in each campaign's own log.
    """
    if not host_ids:
        return 0
    allowed = states.sources_for(target)
    if sources is not None:
        allowed = allowed & frozenset(sources)
    movable = list(
        Host.objects.filter(pk__in=host_ids, state__in=allowed).values_list("pk", "campaign_id")
    )
    by_campaign: dict[int, list[int]] = {}
    for pk, campaign_id in movable:
        by_campaign.setdefault(campaign_id, []).append(pk)
    total = 0
    for campaign_id, ids in by_campaign.items():
        moved = transition_hosts(ids, target, reason=reason)
        if moved:
            total += moved
            record("host.transition_bulk", actor=actor, campaign_id=campaign_id,
                   data={"to": target, "reason": reason, "count": moved, "host_ids": ids})
    return total


# --- runs (foreground and background) ------------------------------------------------------


def create_contact_run(campaign: Campaign, *, mode: str = ContactRun.PENDING,
                       actor=None) -> ContactRun:
    if actor is not None and not has_perm(actor, "resolve_contacts"):
        raise PermissionDenied(f"{actor} may not resolve contacts")
    run = ContactRun.objects.create(campaign=campaign, mode=mode, created_by=actor)
    record("contacts.run_start", actor=actor, campaign_id=campaign.pk, obj=run,
           data={"mode": mode})
    return run


def run_contact_run(
    run_id: int,
    *,
    lookup: ContactLookup | None = None,
    progress: Callable[[int, int, ResolveSummary], None] | None = None,
) -> ContactRun | None:
    """Claim a queued run and do it. Returns None if the run is finished or gone.

    A run still "running" is taken over: with acks_late the task comes back only when the
    worker that held it died, and resolving is idempotent (contacts are upserted, hosts move
    only from their source states), so redoing part of it costs queries, never correctness.
    """
    now = timezone.now()
    if ContactRun.objects.filter(
        pk=run_id, status__in=[ContactRun.QUEUED, ContactRun.RUNNING]
    ).update(status=ContactRun.RUNNING, started_at=now, heartbeat_at=now) != 1:
        return None
    run = ContactRun.objects.select_related("campaign").get(pk=run_id)

    def report(done: int, total: int, summary: ResolveSummary) -> None:
        ContactRun.objects.filter(pk=run_id).update(
            heartbeat_at=timezone.now(),
            hosts_total=total, hosts_done=done, resolved=summary.resolved,
            failed=summary.failed, queries=summary.queries,
        )
        if progress is not None:
            progress(done, total, summary)

    try:
        summary = resolve_hosts(run.campaign, mode=run.mode, lookup=lookup, progress=report)
    except Exception as exc:
        run.mark_failed(str(exc))
        raise
    ContactRun.objects.filter(pk=run_id).update(
        status=ContactRun.DONE, hosts_total=summary.hosts, hosts_done=summary.hosts,
        resolved=summary.resolved, failed=summary.failed, queries=summary.queries,
        finished_at=timezone.now(),
    )
    run.refresh_from_db()
    record("contacts.run_done", campaign_id=run.campaign_id, obj=run,
           data={"summary": summary.line})
    return run


def abandon_stale_runs(now: datetime | None = None) -> int:
    """Mark "running" runs without progress for CONTACT_RUN_STALE_SECONDS as failed.

    Their worker died: a run the beat did inline is never redelivered, and left "running" it
    would keep the beat from ever starting another run for that campaign. Returns how many.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.CONTACT_RUN_STALE_SECONDS)
    stale = list(ContactRun.objects.filter(status=ContactRun.RUNNING).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)))
    for run in stale:
        last = run.heartbeat_at or run.started_at
        error = f"abandoned: no progress since {last.isoformat(timespec='seconds')}"
        if ContactRun.objects.filter(pk=run.pk, status=ContactRun.RUNNING).update(
                status=ContactRun.FAILED, error=error, finished_at=now):
            record("contacts.run_abandoned", campaign_id=run.campaign_id, obj=run,
                   data={"error": error, "hosts_done": run.hosts_done})
    return len(stale)


def campaigns_with_due_hosts() -> Iterable[Campaign]:
    now = timezone.now()
    return Campaign.objects.filter(status=Campaign.ACTIVE).filter(
        Q(hosts__state=states.VERIFIED_OPEN, hosts__contact__isnull=True)
        | Q(hosts__state=states.VERIFIED_OPEN, hosts__contact__status=Contact.FAILED,
            hosts__contact__next_attempt_at__lte=now)
    ).distinct()


# --- staff actions -------------------------------------------------------------------------


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


def suppress(
    *, value: str, actor, reason: str, source: str = "manual", agency_id: int | None = None
) -> Suppression:
    """Add an address or a domain to the do-not-contact list.

    Contacts already resolved to it are marked suppressed and their hosts, if not yet
    written to, leave the letter queue (contact_resolved → no_contact). `agency_id` is whose
    entry it is (default: the acting user's agency) and only decides who sees it listed.
    """
    from campaign.agencies import viewer_agency_id

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
            _bulk_transition([host_id for _, host_id in hits], states.NO_CONTACT,
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
    from campaign.agencies import viewer_agency_id

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
            hosts = _bulk_transition([host_id for _, host_id in freed], states.CONTACT_RESOLVED,
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

