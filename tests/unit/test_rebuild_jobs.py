"""How ``forum replay --jobs`` shares projections out between processes."""

from __future__ import annotations

from service.operations import PARALLEL_FROM_EVENTS, default_jobs
from workers.projections import PROJECTIONS
from workers.rebuild_jobs import split

ALL = {name: f"v1.{i}" for i, name in enumerate(PROJECTIONS)}


def cost(share: dict[str, str]) -> float:
    return sum(PROJECTIONS[name].cost for name in share)


def test_every_projection_is_built_once_with_its_own_namespace():
    for jobs in range(1, 8):
        shares = split(ALL, jobs)
        assert len(shares) == min(jobs, len(ALL))
        merged: dict[str, str] = {}
        for share in shares:
            assert share and not set(share) & set(merged)
            merged.update(share)
        assert merged == ALL


def test_shares_are_balanced_and_the_heaviest_comes_first():
    shares = split(ALL, 2)
    assert shares[0] == {"thread_page": ALL["thread_page"]}
    assert cost(shares[0]) >= cost(shares[1])
    assert max(cost(s) for s in shares) <= max(PROJECTIONS[n].cost for n in ALL) + 0.5 * \
        min(cost(s) for s in shares)


def test_one_projection_or_one_job_is_one_share():
    assert split({"archives": "v1.1"}, 4) == [{"archives": "v1.1"}]
    assert split(ALL, 1) == [ALL]


def test_a_replay_leaves_a_core_to_postgresql_and_redis():
    assert default_jobs(PARALLEL_FROM_EVENTS - 1, cores=8) == 1  # not worth a spawn
    assert default_jobs(1_000_000, cores=1) == 1
    assert default_jobs(1_000_000, cores=2) == 1
    assert default_jobs(1_000_000, cores=8) == 7
