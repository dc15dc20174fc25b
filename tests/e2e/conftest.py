"""Fixtures the end-to-end tests share."""

from tests.e2e.test_pages import settle  # noqa: F401 (a fixture: projections caught up)
