"""Helpers shared by the management commands: look-ups with clear errors, a progress bar."""

from __future__ import annotations

import sys
import time

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from campaign.models import Campaign


def get_campaign(slug: str) -> Campaign:
    try:
        return Campaign.objects.select_related("agency").get(slug=slug)
    except Campaign.DoesNotExist:
        raise CommandError(f"no campaign with slug {slug!r}") from None


def get_user(username: str | None):
    if not username:
        return None
    try:
        return get_user_model().objects.get(username=username, is_active=True)
    except get_user_model().DoesNotExist:
        raise CommandError(f"no active user {username!r}") from None


class ProgressBar:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, label: str, stream=None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self._last = 0.0

    def update(self, done: float, total: float | None, extra: str = "") -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.1 and (total is None or done < total):
            return
        self._last = now
        if total:
            fraction = min(1.0, done / total)
            bar = "#" * int(30 * fraction)
            text = f"\r{self.label} [{bar:<30}] {fraction:6.1%} {extra}"
        else:
            text = f"\r{self.label} {extra}"
        self.stream.write(text[:120].ljust(80))
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
