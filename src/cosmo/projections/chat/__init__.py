"""The chat read model: its projection (projection.py), the contract's shapes (shapes.py) and its queries
(queries.py)."""

from cosmo.projections.chat.projection import ChatProjection

ALL = (ChatProjection,)
