"""Aggregates and their events. No I/O and no framework code lives here."""
