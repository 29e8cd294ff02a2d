"""Aggregates and their events. No I/O and no framework code lives here."""

from __future__ import annotations

import inspect
import pkgutil
from importlib import import_module

from eventsourcing.domain import Aggregate


def aggregate_classes() -> list[type[Aggregate]]:
    """Every aggregate class of the domain (what snapshots fingerprint and the audit log indexes)."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        module = import_module(f"{__name__}.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Aggregate) and cls is not Aggregate and cls.__module__ == module.__name__:
                found.append(cls)
    return found
