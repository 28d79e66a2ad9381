"""The recipient's page: signed links, what it may show, replies and preferences from it
(its "test my server again now" is letters.retest).

A letter's link carries a token signed with SECRET_KEY (django.core.signing: HMAC-SHA256,
compared in constant time) over the letter's idempotency key, which is itself 128 random bits.
Nothing else identifies the letter, so a token opens exactly one letter and cannot be guessed
or derived from another. Every read here starts from that letter and reaches hosts only through
its own LetterHost rows: no function takes a host id from the request.

Tokens stop working when the campaign is closed (or after RECIPIENT_LINK_MAX_AGE_DAYS); an
expired token and a forged one get the same answer, so a probe of the URL space learns nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.utils import timezone

from campaign import states as host_states
from campaign.audit import record
from campaign.models import Campaign
from campaign.ratelimit import RateLimited, count_hit  # noqa: F401 - RateLimited: callers catch it here
from letters import cadence, states
from letters.languages import LANGUAGES, normalize
from letters.mailtext import clean_text
from letters.models import ContactPreference, InboundMessage, Letter, LetterHost
from letters.tracking import move_letter
from probes.contacts.models import Contact
from probes.verification.base import OPEN
from probes.verification.models import ProbeResult

SALT = "letters.recipient.v1"
INBOUND_ESP = "recipient-page"  # InboundMessage.esp of replies written on the page
FEEDBACK_ACTION = "letter.recipient_feedback"
PREFERENCES_ACTION = "letter.recipient_preferences"
NOT_MINE = "not_mine"
MESSAGE = "message"
FEEDBACK_KINDS = {NOT_MINE: "This is not my server / wrong contact", MESSAGE: "Message"}
MAX_TEXT = 5000
TRANSCRIPT_CHARS = 1200

# (count, seconds) per fixed window; overridable in settings for tests and busy agencies.
DEFAULT_LIMITS = {
    "retest_token": (3, 3600),
    "retest_ip": (10, 3600),
    "feedback_token": (5, 3600),
    "feedback_ip": (20, 3600),
    "preferences_token": (10, 3600),
    "preferences_ip": (30, 3600),
    # Short codes typed from a printed letter (letters.shortlinks): typos are normal, a
    # thousand guesses an hour are not.
    "short_code_ip": (60, 3600),
}


RELAY, PROXY = "relay", "proxy"

def letter_kinds(evidence_checks: list[str]) -> list[str]:
    """Which self-check questions fit: the relay set for smtp_relay findings, the proxy set
    for the others; both when the letter is about both."""
    kinds = {RELAY if check == "smtp_relay" else PROXY for check in evidence_checks if check}
    return [kind for kind in (RELAY, PROXY) if kind in kinds] or [RELAY, PROXY]


# Countries with more than one zone: CLDR lists them alphabetically (Spain's first is
# Africa/Ceuta, the USA's America/Adak), so the zone most of the country lives in is named here.
MAIN_ZONES = {
    "AR": "America/Argentina/Buenos_Aires", "AU": "Australia/Sydney", "BR": "America/Sao_Paulo",
    "CA": "America/Toronto", "CD": "Africa/Kinshasa", "CL": "America/Santiago",
    "CN": "Asia/Shanghai", "DE": "Europe/Berlin", "EC": "America/Guayaquil",
    "ES": "Europe/Madrid", "ID": "Asia/Jakarta", "KZ": "Asia/Almaty", "MN": "Asia/Ulaanbaatar",
    "MX": "America/Mexico_City", "MY": "Asia/Kuala_Lumpur", "NZ": "Pacific/Auckland",
    "PT": "Europe/Lisbon", "RU": "Europe/Moscow", "UA": "Europe/Kyiv", "US": "America/New_York",
}


def suggested_time_zone(countries: list[str]) -> str:
    """A zoneinfo name to suggest for the first country given: its main zone, else its only
    or first zone in CLDR's territory→zone table (babel ships it; Python has none)."""
    import zoneinfo

    from babel.core import get_global

    zones = get_global("territory_zones")
    available = zoneinfo.available_timezones()
    for country in countries:
        code = (country or "").upper()
        for zone in [MAIN_ZONES.get(code, ""), *zones.get(code, [])]:
            if zone in available:
                return zone
    return ""


# -- tokens --------------------------------------------------------------------------------

def make_token(letter_key: str) -> str:
    return signing.dumps(letter_key, salt=SALT, compress=False)


def letter_url(letter_key: str) -> str:
    """The absolute link a letter carries (PUBLIC_BASE_URL + /r/<token>/)."""
    return f"{settings.PUBLIC_BASE_URL}/r/{make_token(letter_key)}/"


def _max_age() -> int:
    return int(settings.RECIPIENT_LINK_MAX_AGE_DAYS) * 86400


def letter_for_token(token: str) -> Letter | None:
    """The letter a valid, unexpired token opens, else None (whatever the reason)."""
    try:
        key = signing.loads(token, salt=SALT, max_age=_max_age())
    except signing.BadSignature:  # includes SignatureExpired
        return None
    if not isinstance(key, str):
        return None
    letter = (Letter.objects.select_related("campaign", "campaign__agency")
              .filter(idempotency_key=key, state__in=states.OUT_STATES).first())
    if letter is None or letter.campaign.status == Campaign.CLOSED:
        return None
    return letter


def token_digest(token: str) -> str:
    """What cache keys and logs hold instead of the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()[:32]


# -- rate limits ---------------------------------------------------------------------------

def _limit(scope: str) -> tuple[int, int]:
    limits = {**DEFAULT_LIMITS, **settings.RECIPIENT_RATE_LIMITS}
    return limits[scope]


def hit(scope: str, ident: str) -> None:
    """Count one request in a fixed window; raise RateLimited past the scope's limit."""
    count, window = _limit(scope)
    count_hit("recipient", scope, ident, limit=count, window=window)


def check_limits(kind: str, token: str, client_ip: str) -> None:
    # The token first: one recipient hammering the button must not use up a shared IP's budget.
    hit(f"{kind}_token", token_digest(token))
    hit(f"{kind}_ip", client_ip or "unknown")


# -- reads ---------------------------------------------------------------------------------

@dataclass
class PageHost:
    ip: str
    state: str
    country: str
    evidence: list[dict]
    transcript: str = ""
    remediated_at: object = None
    checks: list[str] = field(default_factory=list)

    @property
    def closed(self) -> bool:
        return self.state == host_states.REMEDIATED


def letter_links(letter: Letter):
    """This letter's hosts and nothing else: the only way the page reaches hosts."""
    return (LetterHost.objects.filter(letter=letter, dropped=False)
            .select_related("host").order_by("host__ip", "id"))


def _summarize(transcript: str) -> str:
    lines = [line for line in transcript.splitlines() if line.strip()]
    text = "\n".join(lines[:30])
    return text[:TRANSCRIPT_CHARS] + ("\n…" if len(text) > TRANSCRIPT_CHARS or len(lines) > 30
                                     else "")


def page_hosts(letter: Letter) -> list[PageHost]:
    """What the page shows per host: evidence quoted in the letter, newest open transcript."""
    links = list(letter_links(letter))
    ids = [link.host_id for link in links]
    transcripts: dict[int, str] = {}
    rows = (ProbeResult.objects.filter(host_id__in=ids, verdict=OPEN)
            .order_by("host_id", "-started_at", "-id").values_list("host_id", "transcript"))
    for host_id, transcript in rows:
        transcripts.setdefault(host_id, _summarize(transcript or ""))
    return [
        PageHost(ip=link.host.ip, state=link.host.state, country=link.host.country,
                 evidence=list(link.evidence or []), transcript=transcripts.get(link.host_id, ""),
                 remediated_at=link.host.remediated_at)
        for link in links
    ]


def letter_countries(letter: Letter, hosts: list[PageHost]) -> list[str]:
    """Where the letter's owner is: its hosts' countries, then their contacts' (RDAP)."""
    countries = [host.country for host in hosts if host.country]
    countries += list(Contact.objects.filter(host__letter_links__letter=letter)
                      .exclude(country="").order_by("id").values_list("country", flat=True))
    return countries


# -- writes --------------------------------------------------------------------------------

def submit_feedback(letter: Letter, *, kind: str, text: str, token: str,
                    client_ip: str) -> InboundMessage:
    """A reply written on the page: onto the letter's thread, and its contacts up for review."""
    if kind not in FEEDBACK_KINDS:
        raise ValueError(f"unknown feedback kind {kind!r}")
    # Typed or pasted by anyone: kept as text the database takes (no NUL, valid UTF-8).
    text = clean_text(text).strip()[:MAX_TEXT]
    if kind == MESSAGE and not text:
        raise ValueError("empty message")
    check_limits("feedback", token, client_ip)
    ips = [link.host.ip for link in letter_links(letter)]
    subject = f"[recipient page] {FEEDBACK_KINDS[kind]}"
    with transaction.atomic():
        stored = InboundMessage.objects.create(
            letter=letter, esp=INBOUND_ESP, from_email="", to=letter.email,
            subject=subject, text=text or "(no comment)",
            message_id="", in_reply_to=letter.message_id[:2000],
        )
        move_letter(letter, states.REPLIED, data={"esp": INBOUND_ESP, "reply": stored.pk})
        reviewed = 0
        if kind == NOT_MINE:
            host_ids = [link.host_id for link in letter_links(letter)]
            reviewed = Contact.objects.filter(host_id__in=host_ids).update(
                review_requested_at=timezone.now())
            record("contact.review_requested", campaign_id=letter.campaign_id, obj=letter,
                   data={"letter": letter.pk, "ips": ips, "contacts": reviewed,
                         "reason": "the recipient says this is not their server"})
        record(FEEDBACK_ACTION, campaign_id=letter.campaign_id, obj=letter,
               data={"kind": kind, "reply": stored.pk, "comment": subject})
    return stored


class InvalidPreference(ValueError):
    pass


def current_preference(letter: Letter) -> ContactPreference | None:
    """What the recipient last chose for this letter's contacts (the page pre-fills it)."""
    return (ContactPreference.objects
            .filter(contact__host__letter_links__letter=letter,
                    contact__host__letter_links__dropped=False)
            .order_by("-updated_at", "-id").first())


def set_preferences(letter: Letter, *, language: str, business_days_only: bool,
                    time_zone: str, token: str, client_ip: str) -> int:
    """Store the recipient's choices on every contact of the letter; returns how many.

    `language`: one of the letter languages, or empty for the contact's own. With
    `business_days_only`, `time_zone` must be a zoneinfo name. Raises InvalidPreference
    (nothing stored) or RateLimited.
    """
    code = normalize(language) if language else ""
    if language and code not in LANGUAGES:
        raise InvalidPreference(f"no letters in language {language!r}")
    time_zone = (time_zone or "").strip()
    if (business_days_only or time_zone) and not cadence.valid_time_zone(time_zone):
        raise InvalidPreference(f"unknown time zone {time_zone!r}")
    check_limits("preferences", token, client_ip)
    host_ids = [link.host_id for link in letter_links(letter)]
    now = timezone.now()
    with transaction.atomic():
        contacts = list(Contact.objects.filter(host_id__in=host_ids).order_by("id"))
        for contact in contacts:
            ContactPreference.objects.update_or_create(contact=contact, defaults={
                "language": code, "business_days_only": business_days_only,
                "time_zone": time_zone, "letter": letter, "updated_at": now,
            })
        record(PREFERENCES_ACTION, campaign_id=letter.campaign_id, obj=letter,
               data={"language": code, "business_days_only": business_days_only,
                     "time_zone": time_zone, "contacts": len(contacts)})
    return len(contacts)


def expires_at(letter: Letter):
    """When the link stops working at the latest (the campaign may close earlier)."""
    return (letter.sent_at or letter.created_at) + timedelta(seconds=_max_age())
