"""Resolving hosts' abuse contacts: one registry look-up (RDAP, WHOIS fallback) per network,
the network cache that lets one answer serve every host of that network, and contact runs
(foreground or a Celery task) with their progress. Commands, tasks and views call these."""

from __future__ import annotations

import ipaddress
import logging
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from campaign import states
from campaign.audit import record
from campaign.hosts import bulk_transition, fill_countries
from campaign.models import Campaign, Host
from campaign.roles import has_perm
from probes.contacts import whois
from probes.contacts.bootstrap import load_bootstrap
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
from probes.contacts.errors import ContactError
from probes.contacts.languages import language_for_country
from probes.contacts.models import Contact, ContactRun, NetworkRecord, covering_network
from probes.contacts.postal import postal_address
from probes.contacts.records import NetworkInfo
from probes.contacts.selectors import SuppressionList

log = logging.getLogger(__name__)

CHUNK = 1000
# Hosts looked up per registry per window (each window's answers are held until written),
# and the most registries asked at once (the five RIRs, and whatever else a bootstrap lists).
WINDOW = 500
MAX_REGISTRY_THREADS = 8
# Retry delays for hosts whose look-up failed for now: 10 min, 40 min, 2.7 h, … up to a day.
RETRY_BASE = timedelta(minutes=10)
RETRY_MAX = timedelta(days=1)
PROVISIONAL_DAYS = 1


def build_lookup(counter: QueryCounter | None = None) -> ContactLookup:
    counter = counter or QueryCounter()
    limiter = RateLimiter(per_second=float(settings.CONTACT_LOOKUPS_PER_SECOND))
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
    return float(settings.CONTACT_CACHE_DAYS)


def _retry_delay(attempts: int) -> timedelta:
    return min(RETRY_MAX, RETRY_BASE * (4 ** max(0, attempts - 1)))


def select_hosts(campaign: Campaign, mode: str) -> list[tuple[int, str, str, str]]:
    """(id, ip, state, country) of the hosts a run covers."""
    qs = Host.objects.filter(campaign=campaign)
    if mode != ContactRun.ALL:
        qs = qs.filter(state=states.VERIFIED_OPEN)
    if mode in (ContactRun.DUE, ContactRun.RETRY):
        now = timezone.now()
        retries = (Q(contact__status=Contact.FAILED, contact__next_attempt_at__lte=now)
                   | Q(contact__status=Contact.FAILED, contact__next_attempt_at__isnull=True))
        qs = qs.filter(retries | Q(contact__isnull=True) if mode == ContactRun.DUE else retries)
    return list(qs.values_list("id", "ip", "state", "country"))


class _NetworkCache:
    """Which stored answer covers an address: the last one used, else the database."""

    def __init__(self) -> None:
        self.current: NetworkRecord | None = None
        self.now = timezone.now()
        # The answers stored by this run, newest last, as (version, first, last, record):
        # what find_known() looks through, without parsing addresses again.
        self.recent: deque[tuple[int, int, int, NetworkRecord]] = deque(maxlen=256)

    def find_known(self, ip_text: str) -> NetworkRecord | None:
        """An answer this run already stored that holds the address (no database read)."""
        ip = ipaddress.ip_address(ip_text)
        version, value = ip.version, int(ip)
        for known_version, first, last, candidate in reversed(self.recent):
            if known_version == version and first <= value <= last:
                return candidate
        return None

    def find(self, ip_text: str) -> NetworkRecord | None:
        if self.current is not None and self.current.holds(ipaddress.ip_address(ip_text)):
            return self.current
        # The most specific stored answer: the latest start, then the earliest end.
        found = (_covering(ip_text, self.now).order_by("-start_address", "end_address")
                 .first())
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
        first, last = ipaddress.ip_address(start), ipaddress.ip_address(end)
        self.recent.append((first.version, int(first), int(last), record_))
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
    the network answer just fetched (or found in the cache) serves all of them. Hosts no
    stored answer covers are looked up concurrently across registries (one thread each,
    each paced on its own by the shared RateLimiter), a window at a time; the threads only
    talk to registries, the database is read and written here.
    """
    rows = select_hosts(campaign, mode)
    rows.sort(key=lambda row: _address_order(row[1]))
    summary = ResolveSummary(hosts=len(rows))
    own_lookup = lookup is None
    lookup = lookup or build_lookup()
    done = 0

    def write(chunk: list[tuple[int, str, str, str]], answers: dict[str, Resolution]) -> None:
        nonlocal done
        _resolve_chunk(chunk, answers, lookup, cache, suppressed, summary,
                       campaign_id=campaign.pk)
        done += len(chunk)
        summary.queries = lookup.counter.total
        if progress is not None:
            progress(done, len(rows), summary)

    try:
        cache = _NetworkCache()
        suppressed = SuppressionList.load()
        manual = set(Contact.objects.filter(host__campaign=campaign, manual=True)
                     .values_list("host_id", flat=True))
        covered = _covered_host_ids(campaign, cache.now) if rows else set()
        # Hosts a stored answer (or a hand-set contact) covers need no look-up: written first.
        queues: dict[str, list[tuple[int, str, str, str]]] = {}
        ready: list[tuple[int, str, str, str]] = []
        registry_of_block: dict[tuple[int, int], str] = {}
        for row in rows:
            if row[0] in manual or row[0] in covered:
                ready.append(row)
                if len(ready) >= CHUNK:
                    write(ready, {})
                    ready = []
                continue
            # Bootstraps delegate no less than a /24 (IPv4) or /32 (IPv6): asked once each.
            version, value = _address_order(row[1])
            block = (version, value >> (8 if version == 4 else 96))
            key = registry_of_block.get(block)
            if key is None:
                key = registry_of_block[block] = lookup.registry_key(row[1])
            queues.setdefault(key, []).append(row)
        if ready:
            write(ready, {})
        # The rest, a window at a time: up to WINDOW hosts from each registry's queue. The
        # next window's look-ups run while this thread writes the last one's answers.
        positions = dict.fromkeys(queues, 0)

        def take() -> tuple[dict[str, list[tuple[int, str, str, str]]], list]:
            window: dict[str, list[tuple[int, str, str, str]]] = {}
            known: list[tuple[int, str, str, str]] = []  # stored by an earlier window
            for key, queue in queues.items():
                taken: list[tuple[int, str, str, str]] = []
                while positions[key] < len(queue) and len(taken) < WINDOW:
                    row = queue[positions[key]]
                    positions[key] += 1
                    (known if cache.find_known(row[1]) is not None else taken).append(row)
                if taken:
                    window[key] = taken
            return window, known

        registries = _RegistryLookups(lookup)
        try:
            window, known = take()
            futures = registries.submit(window)
            while window or known:
                answers = registries.collect(futures)
                rows_now = sorted([*known, *(row for taken in window.values() for row in taken)],
                                  key=lambda row: _address_order(row[1]))
                window, known = take()
                futures = registries.submit(window)
                for start in range(0, len(rows_now), CHUNK):
                    write(rows_now[start:start + CHUNK], answers)
        finally:
            registries.close()
    finally:
        if own_lookup:
            lookup.close()
    summary.queries = lookup.counter.total
    return summary


def _covering(address, now: datetime) -> QuerySet[NetworkRecord]:
    """Stored, unexpired answers whose range holds `address` (text, or OuterRef("ip")):
    a GiST look-up on the network, refined by the exact bounds."""
    return NetworkRecord.objects.filter(network__covers=address, start_address__lte=address,
                                        end_address__gte=address, expires_at__gt=now)


def _covered_host_ids(campaign: Campaign, now: datetime) -> set[int]:
    """The campaign's hosts a stored answer holds: one set-based query instead of one
    look-up per host."""
    return set(Host.objects.filter(campaign=campaign)
               .filter(Exists(_covering(OuterRef("ip"), now)))
               .values_list("id", flat=True))


class _RegistryLookups:
    """Each registry's addresses on a thread of its own; an answer whose network holds the
    next address serves it too (one query per network, misses included), across windows:
    a registry's next window is handed over only once its last one is collected."""

    def __init__(self, lookup: ContactLookup) -> None:
        self.lookup = lookup
        self.last: dict[str, Resolution | None] = {}
        self.pool = ThreadPoolExecutor(max_workers=MAX_REGISTRY_THREADS,
                                       thread_name_prefix="contacts")

    def submit(self, window: dict[str, list[tuple[int, str, str, str]]]) -> list[Future]:
        return [self.pool.submit(self._one_registry, key, rows) for key, rows in window.items()]

    @staticmethod
    def collect(futures: list[Future]) -> dict[str, Resolution]:
        answers: dict[str, Resolution] = {}
        for future in futures:
            answers.update(future.result())
        return answers

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def _one_registry(self, key: str, rows: list[tuple[int, str, str, str]]
                      ) -> dict[str, Resolution]:
        found: dict[str, Resolution] = {}
        last = self.last.get(key)
        for _host_id, ip_text, _state, _country in rows:
            if (last is not None and last.status != FAILED and last.network is not None
                    and last.network.cacheable_for(ip_text)):
                found[ip_text] = last
                continue
            found[ip_text] = last = _safe_resolve(self.lookup, ip_text)
        self.last[key] = last
        return found


def _safe_resolve(lookup: ContactLookup, ip_text: str) -> Resolution:
    try:
        return lookup.resolve(ip_text)
    except Exception as exc:  # a parser bug on hostile input must not end the run
        log.exception("contact look-up for %s crashed", ip_text)
        return Resolution(FAILED, errors=[f"internal error: {exc}"[:300]])


def _resolve_chunk(
    chunk: list[tuple[int, str, str, str]],
    answers: dict[str, Resolution],
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
            resolution = answers.get(ip_text) or _safe_resolve(lookup, ip_text)
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
                "next_attempt_at", "updated_at", "postal_address",
            ],
        )
        bulk_transition(to_resolved, states.CONTACT_RESOLVED, "abuse contact resolved")
        bulk_transition(to_no_contact, states.NO_CONTACT, "no usable abuse contact")
        # Hosts the feed gave no country take their network's (dashboard, host page, report).
        if upserts:
            fill_countries(campaign_id, {c.host_id: c.country for c in upserts
                                         if c.country and not countries[c.host_id]})


def _postal_text(network: NetworkRecord) -> str:
    """The network's postal address as text, read once per network object of a run."""
    text = getattr(network, "_postal_text", None)
    if text is None:
        found = postal_address(network)
        text = network._postal_text = found.text if found else ""
    return text


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
        # No e-mail address at all: the end of the fallback chain, a letter by post.
        contact.postal_address = _postal_text(network)
    elif suppressed.matches(network.email):
        contact.status = Contact.SUPPRESSED
        contact.last_error = f"{network.email} is on the do-not-contact list"
    else:
        contact.status = Contact.RESOLVED
        contact.last_error = ""
    return contact



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


def campaigns_with_due_hosts() -> Iterable[tuple[Campaign, str]]:
    """(campaign, run mode) for the beat: campaigns whose automation resolves contacts take
    their new verified hosts and due retries (DUE); the others only the retries of look-ups
    a person started that a registry failed (RETRY)."""
    now = timezone.now()
    retry = Q(hosts__state=states.VERIFIED_OPEN, hosts__contact__status=Contact.FAILED,
              hosts__contact__next_attempt_at__lte=now)
    new = Q(hosts__state=states.VERIFIED_OPEN, hosts__contact__isnull=True)
    active = Campaign.objects.filter(status=Campaign.ACTIVE)
    found = [(c, ContactRun.DUE) for c in
             active.filter(auto_resolve_contacts=True).filter(new | retry).distinct()]
    found += [(c, ContactRun.RETRY) for c in
              active.filter(auto_resolve_contacts=False).filter(retry).distinct()]
    return found
