"""What a host is suspected of: stored as a bit mask so a host can be both."""

from __future__ import annotations

RELAY = 1
PROXY = 2
KIND_BITS = {"relay": RELAY, "proxy": PROXY}


def parse_kinds(text: str) -> int:
    """`"relay,proxy"` → 3. Raises ValueError naming the bad word."""
    mask = 0
    for word in (part.strip().lower() for part in text.split(",")):
        if not word:
            continue
        if word not in KIND_BITS:
            raise ValueError(f"unknown kind {word!r} (expected relay or proxy)")
        mask |= KIND_BITS[word]
    if not mask:
        raise ValueError("no kind given (expected relay, proxy or relay,proxy)")
    return mask


def kind_names(mask: int) -> list[str]:
    return [name for name, bit in KIND_BITS.items() if mask & bit]
