"""Projection workers: the Dramatiq actors, the runner that feeds projections from the
log, the projections themselves, and rebuilds."""
