"""Authorization-matrix requests for the webhook delivery endpoints (``/webhooks/{id}/test``,
``/webhooks/{id}/deliveries``): one valid request per operation, on server A."""

from __future__ import annotations

from tests.surfaces.team.matrix import Builder

WEBHOOK_DELIVERY_REQUESTS: dict[tuple[str, str], Builder] = {}
