-- Snapshots of threads' write-side state (service/domain/snapshot.py, events/snapshots.py):
-- a load reads the newest one and only the events after `version`, so deciding about a
-- long thread never reads all of it. One row per stream, replaced by a newer one. Not
-- facts: rebuildable from the log at any time, so not in backups (events/backup.py
-- SKIPPED), and an erasure deletes the rows of every stream it rewrites (events/erasure.py).
-- `fold_version`: the shape of `data`; a row of another one is ignored.
CREATE TABLE IF NOT EXISTS snapshots (
    stream_id    text        PRIMARY KEY,
    version      integer     NOT NULL CHECK (version > 0),
    fold_version integer     NOT NULL,
    data         bytea       NOT NULL,
    taken_at     timestamptz NOT NULL DEFAULT now()
);
-- Stored out of line and uncompressed: the arrays compress poorly, and a cold load
-- waits for the decompression.
ALTER TABLE snapshots ALTER COLUMN data SET STORAGE EXTERNAL;
