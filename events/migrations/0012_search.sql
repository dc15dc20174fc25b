-- The search read model (workers/search/, docs/design.md "Search"): a projection of the
-- log into PostgreSQL full text, rebuilt from the log like the read models in Redis, so
-- nothing of it is backed up (events/backup.py SKIPPED).
--
-- Its rows live in schema "search", a pair of tables per generation (search.posts_N,
-- search.threads_N), created by the workers when they start building one; the views
-- search.posts and search.threads name the live pair and are replaced in the transaction
-- that swaps a finished build in (blue/green). search_models says, per generation, how
-- far it has read the log (its checkpoint, written in the transaction that writes its
-- rows: exactly once), whether it is live or being built, the log's head when it was
-- started (born) and the position of the last erasure it read: an erasure above its birth
-- makes it stale, and it is rebuilt from the rewritten log (workers/erasures.py).
CREATE SCHEMA IF NOT EXISTS search;
CREATE SEQUENCE IF NOT EXISTS search.generations;
CREATE TABLE IF NOT EXISTS search_models (
    generation bigint      PRIMARY KEY,
    version    integer     NOT NULL,
    born       bigint      NOT NULL,
    checkpoint bigint      NOT NULL DEFAULT 0,
    erased     bigint      NOT NULL DEFAULT 0,
    live       boolean     NOT NULL DEFAULT false,
    started_at timestamptz NOT NULL DEFAULT now()
);
-- At most one live generation and one under construction.
CREATE UNIQUE INDEX IF NOT EXISTS search_models_live ON search_models (live) WHERE live;
CREATE UNIQUE INDEX IF NOT EXISTS search_models_building ON search_models (live)
    WHERE NOT live;
