"""The owner's postal address, for when no e-mail address is left (the end of the fallback
chain): read from the registry answer already stored with the network.

RDAP: the vCard `adr` of the registrant, else the administrative, technical, NOC or abuse
entity (its `label` parameter, else the structured parts: RFC 6350's street, locality,
region, code, country). A short address (APNIC often gives the registrant a street only)
loses to a complete one of another role. WHOIS: the `address:` lines of the organisation
object (RIPE, APNIC, AFRINIC, LACNIC), or ARIN's Address/City/StateProv/PostalCode/Country.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from probes.contacts import rdap, whois
from probes.contacts.models import NetworkRecord

ROLE_RANK = ("registrant", "administrative", "technical", "noc", "abuse")
MAX_LINES = 8
COMPLETE = 3  # street, town, country at least


@dataclass(frozen=True)
class PostalAddress:
    name: str
    lines: tuple[str, ...]
    source: str  # rdap or whois
    role: str

    @property
    def text(self) -> str:
        return "\n".join(([self.name] if self.name else []) + list(self.lines))


def _clean(lines) -> tuple[str, ...]:
    out = []
    for line in lines:
        text = " ".join(str(line or "").split())[:120]
        if text and text not in out:
            out.append(text)
    return tuple(out[:MAX_LINES])


def _rdap_lines(entity: dict) -> tuple[str, ...]:
    for name, params, value in rdap.vcard_properties(entity):
        if name != "adr":
            continue
        label = params.get("label")
        if isinstance(label, str) and label.strip():
            return _clean(label.splitlines())
        if isinstance(value, list):
            parts = [p if isinstance(p, str) else " ".join(map(str, p)) if isinstance(p, list)
                     else "" for p in value[:7]]
            # pobox, extended, street | locality, region, code | country
            town = " ".join(p for p in parts[3:6] if p)
            return _clean([*parts[:3], town, *parts[6:7]])
    return ()


def _pick(found: list[tuple[str, tuple[str, ...]]]) -> tuple[str, tuple[str, ...]] | None:
    def score(item):
        role, lines = item
        rank = ROLE_RANK.index(role) if role in ROLE_RANK else len(ROLE_RANK)
        return (len(lines) < COMPLETE, rank, -len(lines))
    usable = [item for item in found if item[1]]
    return min(usable, key=score) if usable else None


def from_rdap(document: dict, organisation: str = "") -> PostalAddress | None:
    found = []
    for entity, _depth in rdap.iter_entities(document):
        roles = rdap.roles_of(entity)
        role = next((r for r in ROLE_RANK if r in roles), roles[0] if roles else "")
        found.append((role, _rdap_lines(entity)))
    picked = _pick(found)
    if picked is None:
        return None
    return PostalAddress(organisation, picked[1], "rdap", picked[0])


def from_whois(text: str, organisation: str = "") -> PostalAddress | None:
    found = []
    for block in whois.parse(text).blocks:
        keys = {key for key, _ in block}
        lines = [value for key, value in block if key == "address"]
        if "city" in keys or "postalcode" in keys:  # ARIN's structured organisation
            get = {key: value for key, value in reversed(block)}
            town = " ".join(v for v in (get.get("city"), get.get("stateprov"),
                                        get.get("postalcode")) if v)
            lines += [town, get.get("country", "")]
        if not lines:
            continue
        if keys & {"organisation", "org-name", "orgname", "orgid"}:
            role = "registrant"
        elif "role" in keys or "person" in keys:
            role = "technical"
        else:
            role = "noc"
        found.append((role, _clean(lines)))
    picked = _pick(found)
    if picked is None:
        return None
    return PostalAddress(organisation, picked[1], "whois", picked[0])


def postal_address(network: NetworkRecord | None) -> PostalAddress | None:
    """The postal address in the network's stored registry answer, if it holds one."""
    if network is None or not network.raw:
        return None
    try:
        if network.source == "rdap":
            return from_rdap(json.loads(network.raw), network.organisation)
        if network.source == "whois":
            return from_whois(network.raw, network.organisation)
    except (ValueError, TypeError, AttributeError):  # an answer we can no longer read
        return None
    return None
