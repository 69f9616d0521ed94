"""Authorization-matrix requests for the message streams endpoints: one valid request per
operation, on server A (``World.on_a``), so the matrix expects what policy says of server A."""

from __future__ import annotations

from tests.surfaces.team.matrix import Builder

MESSAGE_STREAM_REQUESTS: dict[tuple[str, str], Builder] = {}
