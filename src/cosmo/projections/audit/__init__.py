"""The audit log: its projection (projection.py), what auditors read of it (queries.py) and entities rebuilt from
the event store at a version (states.py)."""

from cosmo.projections.audit.projection import AuditProjection

ALL = (AuditProjection,)
