"""Reads for letters: which findings a batch would write about, counts for JSON and pages.

Every function here runs a fixed number of queries whatever the number of hosts or letters
(the batch builder over 20,000 hosts must not issue a query per host).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, Exists, Min, OuterRef, Q, QuerySet

from campaign import states as host_states
from campaign.models import Campaign, Host
from letters import states
from letters.languages import ENGLISH, normalize
from letters.models import Batch, Letter, LetterHost, Retest
from probes.contacts.models import Contact
from probes.contacts.selectors import SuppressionList
from probes.verification.base import OPEN
from probes.verification.models import ProbeResult

# Letters that still count for their hosts: a cancelled or failed one leaves them free.
LIVE_LETTER_STATES = tuple(
    s for s in states.LETTER_STATES if s not in (states.CANCELLED, states.FAILED)
)


@dataclass
class Finding:
    """One host a letter would be about."""

    host_id: int
    ip: str
    country: str
    email: str
    language: str
    kind: str
    retest_id: int | None = None
    evidence: list[dict] = field(default_factory=list)
    # Set (and `email` empty) when no e-mail address is left: the letter goes by post.
    postal_address: str = ""

    @property
    def recipient_key(self) -> str:
        """Who the letter goes to: hosts with the same key share one letter."""
        if self.postal_address:
            return "post:" + " ".join(self.postal_address.lower().split())
        return self.email


def evidence_from_result(result: dict) -> dict:
    """The JSON a letter quotes for one open check (from a ProbeResult's values())."""
    details = result.get("details") or {}
    accepted = details.get("accepted") or {}
    when: datetime = result["started_at"]
    return {
        "check": result["check_name"],
        "port": result["port"],
        "when": when.isoformat(),
        "variant": result.get("variant") or "",
        "sender": accepted.get("sender", ""),
        "recipient": accepted.get("recipient", ""),
        "target": details.get("target", ""),
    }


def open_evidence(host_ids: Iterable[int], *, run_ids: Iterable[int] | None = None
                  ) -> dict[int, list[dict]]:
    """host id → the newest open result per (check, port), oldest check first. One query."""
    qs = ProbeResult.objects.filter(host_id__in=list(host_ids), verdict=OPEN)
    if run_ids is not None:
        qs = qs.filter(run_id__in=list(run_ids))
    rows = qs.order_by("host_id", "-started_at", "-id").values(
        "host_id", "check_name", "port", "variant", "details", "started_at"
    )
    found: dict[int, dict[tuple[str, int], dict]] = defaultdict(dict)
    for row in rows.iterator(chunk_size=5000):
        found[row["host_id"]].setdefault((row["check_name"], row["port"]), row)
    return {
        host_id: [
            evidence_from_result(r)
            for r in sorted(by_check.values(), key=lambda r: (r["check_name"], r["port"]))
        ]
        for host_id, by_check in found.items()
    }


# A letter that bounced for good reached nobody: its hosts (given their next contact by the
# fallback chain) are free for a new first notice.
REACHING_LETTER_STATES = tuple(s for s in LIVE_LETTER_STATES if s != states.BOUNCED)


def _live_links(states_in: tuple[str, ...] = LIVE_LETTER_STATES, **filters) -> Exists:
    return Exists(
        LetterHost.objects.filter(dropped=False, letter__state__in=states_in, **filters)
    )


def open_findings(
    campaign: Campaign,
    *,
    country: str | None = None,
    language: str | None = None,
    suppressions: SuppressionList | None = None,
) -> list[Finding]:
    """Hosts a new batch should write about, each with its contact and evidence.

    First notices: hosts with a resolved contact (so verified open), not yet in a live letter,
    whose address is not on the do-not-contact list. Second notices: notified hosts whose
    latest follow-up re-test found them still open and that no live letter covers yet.
    Postal letters: the same, for hosts no e-mail address is left for and whose contact holds
    a postal address (the end of the fallback chain).
    """
    suppressions = suppressions or SuppressionList.load()
    default_language = normalize(campaign.agency.default_language) or ENGLISH
    wanted_language = normalize(language) if language else None
    if language and wanted_language is None:
        raise ValueError(f"no letters in language {language!r}")

    by_mail = _hosts(campaign, country, Contact.RESOLVED, "email")
    findings = _findings(campaign, by_mail, waiting=host_states.CONTACT_RESOLVED,
                         address="email", default_language=default_language)
    findings = [f for f in findings if not suppressions.matches(f.email)]
    # No e-mail address left, a postal address from the registry (probes.contacts.postal).
    by_post = _hosts(campaign, country, Contact.NO_CONTACT, "postal_address")
    findings += _findings(campaign, by_post, waiting=host_states.NO_CONTACT,
                          address="postal_address", default_language=default_language,
                          letter__channel=states.POSTAL)
    findings = [f for f in findings if wanted_language is None or f.language == wanted_language]
    need = [f.host_id for f in findings if f.kind == states.FIRST_NOTICE]
    evidence = open_evidence(need) if need else {}
    kept = []
    for f in findings:
        if f.kind == states.FIRST_NOTICE:
            f.evidence = evidence.get(f.host_id, [])
        # "Verdict open": a letter quotes evidence; a host without any is not written about.
        if f.evidence:
            kept.append(f)
    return kept


def _hosts(campaign: Campaign, country: str | None, status: str, address: str) -> QuerySet:
    """The campaign's hosts whose contact has `status` and a non-empty `address` column."""
    hosts = Host.objects.filter(campaign=campaign, contact__status=status).exclude(
        **{f"contact__{address}": ""})
    if country:
        cc = country.strip().upper()
        hosts = hosts.filter(Q(country=cc) | Q(country="", contact__country=cc))
    return hosts


def _findings(campaign: Campaign, hosts: QuerySet, *, waiting: str, address: str,
              default_language: str, **live) -> list[Finding]:
    """First notices for `hosts` in state `waiting` that no reaching first notice (narrowed
    by `live`) covers yet, then second notices for the notified ones whose newest follow-up
    re-test found them still open and no live letter covers. Each goes to the contact's
    `address` column: `email`, or `postal_address` for a letter by post. Two queries."""
    columns = (f"contact__{address}", "contact__language", "contact__country",
               "contact__letter_preference__language")
    by_post = address == "postal_address"

    def finding(host_id, ip, cc, to, lang, contact_cc, chosen, kind, **more) -> Finding:
        # The language the recipient chose on their page comes first.
        return Finding(host_id, ip, cc or contact_cc, "" if by_post else to.lower(),
                       normalize(chosen) or normalize(lang) or default_language, kind,
                       postal_address=to if by_post else "", **more)

    first = (
        hosts.filter(state=waiting)
        .exclude(_live_links(REACHING_LETTER_STATES, host=OuterRef("pk"),
                             letter__kind=states.FIRST_NOTICE, **live))
        .values_list("id", "ip", "country", *columns).order_by("id")
    )
    found = [finding(*row, states.FIRST_NOTICE) for row in first.iterator(chunk_size=5000)]
    pending = (
        Retest.objects.filter(campaign=campaign, outcome=Retest.STILL_OPEN,
                              host__state=host_states.NOTIFIED, host__in=hosts)
        .exclude(_live_links(retest=OuterRef("pk")))
        .order_by("host_id", "-at", "-id")
        .values_list("id", "host_id", "host__ip", "host__country", "evidence",
                     *(f"host__{c}" for c in columns))
    )
    seen: set[int] = set()
    for retest_id, host_id, ip, cc, evidence, *contact in pending:
        if host_id in seen:
            continue  # only the newest pending re-test of a host counts
        seen.add(host_id)
        found.append(finding(host_id, ip, cc, *contact, states.SECOND_NOTICE,
                             retest_id=retest_id, evidence=list(evidence or [])))
    return found


def first_notice_dates(host_ids: Iterable[int]) -> dict[int, datetime]:
    """host id → when its first notice went out (for the second notice's wording)."""
    rows = (
        LetterHost.objects.filter(host_id__in=list(host_ids), letter__kind=states.FIRST_NOTICE,
                                  letter__sent_at__isnull=False, dropped=False)
        .values("host_id").annotate(first=Min("letter__sent_at"))
    )
    return {row["host_id"]: row["first"] for row in rows}


def letter_counts(campaign: Campaign) -> dict:
    """{"by_state": {letter state: N}, "batches": {batch state: N}} for campaign_status."""
    letters = dict(
        # Count("*"): an index-only scan of (campaign, state), not a read of every letter.
        Letter.objects.filter(campaign=campaign).values_list("state").annotate(n=Count("*"))
    )
    batches = dict(
        Batch.objects.filter(campaign=campaign).values_list("state").annotate(n=Count("id"))
    )
    return {
        "by_state": {s: letters.get(s, 0) for s in states.LETTER_STATES},
        "batches": {s: batches.get(s, 0) for s in states.BATCH_STATES},
    }


def host_letters(host: Host) -> list[dict]:
    """[{"id", "state", "kind"}] for show_host --json: the letters written about a host."""
    rows = (
        LetterHost.objects.filter(host_id=host.pk, dropped=False)
        .order_by("letter_id")
        .values("letter_id", "letter__state", "letter__kind", "letter__batch_id",
                "letter__sent_at")
    )
    return [
        {"id": r["letter_id"], "state": r["letter__state"], "kind": r["letter__kind"],
         "batch": r["letter__batch_id"],
         "sent_at": r["letter__sent_at"].isoformat() if r["letter__sent_at"] else None}
        for r in rows
    ]


def batch_letters(batch: Batch):
    """The letters of a batch with their hosts, for previews (two queries)."""
    return batch.letters.order_by("id").prefetch_related("letter_hosts__host")


def letter_for_message_ids(ids: Iterable[str]) -> Letter | None:
    """The letter whose Message-ID (ours) or ESP id is among `ids` (a reply's references)."""
    cleaned = [i.strip() for i in ids if i and i.strip()]
    if not cleaned:
        return None
    bare = [i.strip("<>") for i in cleaned]
    return (
        Letter.objects.filter(
            Q(message_id__in=cleaned + [f"<{b}>" for b in bare]) | Q(esp_message_id__in=bare)
        )
        .order_by("-id")
        .first()
    )
