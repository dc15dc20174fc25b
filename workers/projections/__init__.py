"""The registry of projections, used by the catch-up pass, the CLI and the tests."""

from __future__ import annotations

from workers.projections.archives import Archives
from workers.projections.base import Projection
from workers.projections.held import Held
from workers.projections.member_stats import MemberStats
from workers.projections.thread_list import ThreadList
from workers.projections.thread_page import ThreadPage
from workers.projections.unanswered import Unanswered

PROJECTIONS: dict[str, Projection] = {
    p.name: p for p in (ThreadPage(), ThreadList(), Unanswered(), Archives(), MemberStats(),
                        Held())
}

__all__ = ["PROJECTIONS", "Projection"]
