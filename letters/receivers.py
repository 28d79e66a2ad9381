"""anymail webhook signals → letter services. Kept tiny: each is one service call."""

from __future__ import annotations

import logging

from anymail.signals import inbound, tracking
from django.dispatch import receiver

from letters import services

log = logging.getLogger(__name__)


@receiver(tracking, dispatch_uid="letters.tracking")
def on_tracking(sender, event, esp_name, **kwargs) -> None:
    services.record_tracking_event(event, esp_name)


@receiver(inbound, dispatch_uid="letters.inbound")
def on_inbound(sender, event, esp_name, **kwargs) -> None:
    if event.message is None:  # an ESP's notice without the message (nothing to thread)
        log.info("%s inbound event %s without a message", esp_name, event.event_id)
        return
    services.record_inbound(event.message, esp_name)
