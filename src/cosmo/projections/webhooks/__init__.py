"""The webhook outbox: its projection (projection.py), what superusers read of it (queries.py) and what the
delivery worker reads and records (outbox.py)."""

from cosmo.projections.webhooks.projection import WebhookProjection

ALL = (WebhookProjection,)
