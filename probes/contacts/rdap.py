"""RDAP (RFC 9082/9083/9224) without the network: bootstrap look-up and answer parsing.

Pure functions over bytes and dicts, so every RIR's shape is tested from fixtures. An RDAP
answer is hostile input: it may be truncated, nested without end, typed wrongly or lie about
its range; nothing here trusts a member's presence or type.
"""

from __future__ import annotations

import ipaddress
import json
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from probes.contacts.records import (
    HIGH,
    LOW,
    MEDIUM,
    Candidate,
    LookupAnswer,
    NetworkInfo,
    clean_country,
    clean_email,
    clip,
    range_from_cidr,
)

MAX_ENTITY_DEPTH = 6
MAX_ENTITIES = 500
# Roles whose e-mail may stand in for a missing abuse contact, best first.
FALLBACK_ROLES = ("technical", "noc", "administrative", "registrant")


class RdapError(Exception):
    """A look-up that produced no usable answer.

    `permanent` is False when asking again later may help (timeouts, 5xx, 429, truncated
    bodies); `rate_limited` asks the caller to back off from that registry.
    """

    def __init__(
        self, message: str, *, permanent: bool, rate_limited: bool = False, status: int = 0
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.rate_limited = rate_limited
        self.status = status


class BootstrapError(ValueError):
    """A bootstrap file that is not in RFC 9224's shape."""


IPNet = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class _Service:
    network: IPNet
    urls: tuple[str, ...]


class Bootstrap:
    """IANA's ipv4.json/ipv6.json: which RDAP base URLs serve which address space."""

    def __init__(self, documents: Iterable[dict]) -> None:
        services: list[_Service] = []
        for document in documents:
            services.extend(_parse_bootstrap(document))
        if not services:
            raise BootstrapError("the bootstrap files list no services")
        # Longest prefix first, so the first match is the most specific.
        self._services = sorted(services, key=lambda s: -s.network.prefixlen)
        self.base_urls: frozenset[str] = frozenset(u for s in services for u in s.urls)

    @property
    def block_count(self) -> int:
        return len(self._services)

    def servers_for(self, ip_text: str) -> list[str]:
        ip = ipaddress.ip_address(ip_text)
        for service in self._services:
            if service.network.version == ip.version and ip in service.network:
                return list(service.urls)
        return []

    def is_known(self, url: str) -> bool:
        """Whether `url` lies under a base URL the bootstrap lists (redirect policy)."""
        return any(url.startswith(base) for base in self.base_urls)


def _parse_bootstrap(document: object) -> list[_Service]:
    if not isinstance(document, dict) or not isinstance(document.get("services"), list):
        raise BootstrapError("not an RDAP bootstrap file: no 'services' list")
    services = []
    for entry in document["services"]:
        if not (isinstance(entry, list) and len(entry) >= 2):
            raise BootstrapError("a bootstrap service entry is not [[cidrs], [urls]]")
        cidrs, urls = entry[-2], entry[-1]
        if not (isinstance(cidrs, list) and isinstance(urls, list)):
            raise BootstrapError("a bootstrap service entry is not [[cidrs], [urls]]")
        chosen = _preferred_urls(urls)
        if not chosen:
            continue
        for cidr in cidrs:
            try:
                network = ipaddress.ip_network(str(cidr), strict=False)
            except ValueError:
                raise BootstrapError(f"bad prefix {cidr!r} in the bootstrap file") from None
            services.append(_Service(network, chosen))
    return services


def _preferred_urls(urls: list) -> tuple[str, ...]:
    """https URLs if the service offers any; plain http only where it offers nothing else.

    IANA lists ARIN and AFRINIC over both; taking http there would let anyone on the path
    rewrite the abuse address. Test fakes on loopback list http only.
    """
    texts = [u if u.endswith("/") else u + "/" for u in urls if isinstance(u, str)]
    https = tuple(u for u in texts if u.startswith("https://"))
    return https or tuple(u for u in texts if u.startswith("http://"))


def query_url(base_url: str, ip_text: str) -> str:
    return f"{base_url}ip/{ipaddress.ip_address(ip_text)}"


def decode_json(body: bytes, *, where: str = "the server") -> dict:
    """Parse an RDAP body; anything but a JSON object is an error, never a partial answer."""
    try:
        document = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise RdapError(f"{where} sent a body that is not UTF-8", permanent=False) from None
    except json.JSONDecodeError as exc:
        raise RdapError(
            f"{where} sent malformed JSON ({exc.msg} at byte {exc.pos})", permanent=False
        ) from None
    except RecursionError:
        raise RdapError(f"{where} sent JSON nested too deeply", permanent=True) from None
    if not isinstance(document, dict):
        raise RdapError(f"{where} sent JSON that is not an object", permanent=True)
    return document


def error_text(document: dict) -> str:
    """A one-line summary of an RFC 9083 §6 error object."""
    title = clip(document.get("title"))
    code = document.get("errorCode")
    desc = document.get("description")
    first = clip(desc[0], 120) if isinstance(desc, list) and desc else ""
    parts = [p for p in (str(code) if isinstance(code, int) else "", title, first) if p]
    return " ".join(parts).replace("\n", " ")


# --- entities and vCards -------------------------------------------------------------------


def iter_entities(document: dict) -> Iterator[tuple[dict, int]]:
    """Every entity under `document`, shallowest first, with its depth (1 = top level).

    Breadth-first so the network's own abuse contact wins over one buried in a POC; depth
    and count are capped because a hostile server can nest or repeat without end.
    """
    queue: deque[tuple[object, int]] = deque((e, 1) for e in _list(document.get("entities")))
    seen = 0
    while queue and seen < MAX_ENTITIES:
        entity, depth = queue.popleft()
        if not isinstance(entity, dict):
            continue
        seen += 1
        yield entity, depth
        if depth < MAX_ENTITY_DEPTH:
            queue.extend((child, depth + 1) for child in _list(entity.get("entities")))


def roles_of(entity: dict) -> list[str]:
    return [r.strip().lower() for r in _list(entity.get("roles")) if isinstance(r, str)]


def vcard_properties(entity: dict) -> Iterator[tuple[str, dict, object]]:
    """(name, parameters, value) of each jCard property (RFC 7095); junk is skipped."""
    card = entity.get("vcardArray")
    if not (isinstance(card, list) and len(card) >= 2 and isinstance(card[1], list)):
        return
    for prop in card[1][:200]:
        if isinstance(prop, list) and len(prop) >= 4 and isinstance(prop[0], str):
            params = prop[1] if isinstance(prop[1], dict) else {}
            yield prop[0].lower(), params, prop[3]


def vcard_emails(entity: dict) -> list[str]:
    emails: list[str] = []
    for name, _params, value in vcard_properties(entity):
        if name == "email":
            email = clean_email(value)
            if email and email not in emails:
                emails.append(email)
    return emails


def vcard_text(entity: dict, wanted: str) -> str:
    for name, _params, value in vcard_properties(entity):
        if name == wanted and isinstance(value, str):
            return clip(value)
    return ""


def _adr_country(entity: dict) -> str:
    for name, _params, value in vcard_properties(entity):
        if name == "adr" and isinstance(value, list) and len(value) == 7:
            return clean_country(value[6])
    return ""


def _is_unvalidated(entity: dict) -> bool:
    # ARIN marks POCs that never answered its yearly validation; the address may be dead.
    for remark in _list(entity.get("remarks")):
        if isinstance(remark, dict) and "unvalidated" in clip(remark.get("title")).lower():
            return True
    return False


# --- the ip network answer -----------------------------------------------------------------


def parse_ip_network(document: dict, *, server: str = "", all_roles: bool = False) -> LookupAnswer:
    """Network range, names and ranked e-mail candidates from an `ip network` answer.

    `all_roles`: the other roles' addresses after the abuse ones even when there are abuse
    ones (the fallback chain's next steps, probes.contacts.fallback)."""
    if "errorCode" in document and "startAddress" not in document:
        raise RdapError(f"{server or 'server'} answered an error: {error_text(document)}",
                        permanent=True)
    if document.get("objectClassName") != "ip network" and "startAddress" not in document:
        raise RdapError(f"{server or 'server'} did not answer with an ip network object",
                        permanent=True)
    network = parse_network(document)
    candidates: list[Candidate] = []
    fallbacks: dict[str, list[Candidate]] = {role: [] for role in FALLBACK_ROLES}
    org_name = any_registrant = ""
    for entity, _depth in iter_entities(document):
        roles = roles_of(entity)
        handle = clip(entity.get("handle"), 100)
        name = vcard_text(entity, "fn")
        emails = vcard_emails(entity)
        if "registrant" in roles and name:
            # RIPE lists maintainers as registrants too; the organisation is the "org" one.
            if vcard_text(entity, "kind") == "org" and not org_name:
                org_name = name
            any_registrant = any_registrant or name
        if "abuse" in roles:
            confidence = MEDIUM if _is_unvalidated(entity) else HIGH
            candidates.extend(
                Candidate(email, confidence, "abuse", handle, name)
                for email in emails
                if all(c.email != email for c in candidates)
            )
            continue
        for role in FALLBACK_ROLES:
            if role in roles:
                fallbacks[role].extend(Candidate(e, LOW, role, handle, name) for e in emails)
                break
    network.organisation = org_name or any_registrant
    if not network.country:
        # LACNIC sends no `country`; the registrant's structured address ends with one.
        network.country = next(
            (c for e, _ in iter_entities(document) if "registrant" in roles_of(e)
             for c in [_adr_country(e)] if c), ""
        )
    if not candidates or all_roles:
        # Only without any abuse role do the other roles' addresses count, and lower.
        for role in FALLBACK_ROLES:
            for candidate in fallbacks[role]:
                if all(c.email != candidate.email for c in candidates):
                    candidates.append(candidate)
    return LookupAnswer(network=network, candidates=candidates, source="rdap", server=server)


def parse_network(document: dict) -> NetworkInfo:
    cidrs: list[str] = []
    for item in _list(document.get("cidr0_cidrs"))[:64]:
        if not isinstance(item, dict):
            continue
        prefix = item.get("v4prefix") or item.get("v6prefix")
        length = item.get("length")
        if isinstance(prefix, str) and isinstance(length, int) and not isinstance(length, bool):
            try:
                cidrs.append(str(ipaddress.ip_network(f"{prefix}/{length}", strict=False)))
            except ValueError:
                continue
    start, end = _address(document.get("startAddress")), _address(document.get("endAddress"))
    if (not start or not end) and cidrs:
        bounds = range_from_cidr(cidrs[0])
        if bounds:
            start, end = bounds
    return NetworkInfo(
        start=start,
        end=end,
        cidrs=cidrs,
        name=clip(document.get("name"), 100),
        handle=clip(document.get("handle"), 100),
        parent_handle=clip(document.get("parentHandle"), 100),
        country=clean_country(document.get("country")),
    )


def _address(value: object) -> str:
    if not isinstance(value, str):
        return ""
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return ""


def _list(value: object) -> list:
    return value if isinstance(value, list) else []
