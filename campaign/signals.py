"""Signals the core sends to the layers above it, which connect to them in AppConfig.ready().

The core must not import the dashboard, the reports or a feature (tests/test_layers.py);
when it changes something they show, it says so here, once the change is committed.
"""

from __future__ import annotations

from django.db import transaction
from django.dispatch import Signal

# Hosts were added, moved to another state, or given a country. Sent with `campaign_id`:
# the campaign whose hosts changed, or None when they may span campaigns. The campaign
# dashboard drops its cached counts (campaign.apps connects campaign.dashboard to it).
hosts_changed = Signal()


def hosts_changed_on_commit(campaign_id: int | None) -> None:
    """Send `hosts_changed` once the current transaction commits (at once outside one): a
    receiver that recounts before the commit would read, and cache, the old rows."""
    transaction.on_commit(lambda: hosts_changed.send(sender=None, campaign_id=campaign_id))
