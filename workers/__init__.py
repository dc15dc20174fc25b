"""Projection workers: the Dramatiq actors, the runner that feeds projections from the
log, the projections themselves, and rebuilds."""

from workers import native

# Before any projection module is imported: compiled ones only if built from these sources.
native.select()
