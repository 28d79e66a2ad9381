"""anymail webhook signals → letters.tracking and letters.inbound: each one service call."""

from __future__ import annotations

import logging

from anymail import signals as anymail_signals
from django.dispatch import receiver

from letters import tracking
from letters.inbound.receive import record_inbound

log = logging.getLogger(__name__)


@receiver(anymail_signals.tracking, dispatch_uid="letters.tracking")
def on_tracking(sender, event, esp_name, **kwargs) -> None:
    tracking.record_tracking_event(event, esp_name)


@receiver(anymail_signals.inbound, dispatch_uid="letters.inbound")
def on_inbound(sender, event, esp_name, **kwargs) -> None:
    if event.message is None:  # an ESP's notice without the message (nothing to thread)
        log.info("%s inbound event %s without a message", esp_name, event.event_id)
        return
    record_inbound(event.message, esp_name)
