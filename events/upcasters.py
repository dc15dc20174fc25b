"""Pure dict -> dict migrations of stored events, keyed by tag.

Empty until the first incompatible change. Additive changes (a new field with a default)
need no upcaster: msgspec fills defaults and ignores unknown fields.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

UPCASTERS: dict[str, list[Upcaster]] = {}
