"""Writing the append-only audit log."""

from __future__ import annotations

from typing import Any

from campaign.models import AuditEvent


def record(
    action: str,
    *,
    actor=None,
    campaign_id: int | None = None,
    obj: Any = None,
    data: dict | None = None,
) -> AuditEvent:
    return AuditEvent.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        action=action,
        campaign_id=campaign_id,
        object_type=type(obj).__name__.lower() if obj is not None else "",
        object_id=str(getattr(obj, "pk", "") or "") if obj is not None else "",
        data=data or {},
    )
