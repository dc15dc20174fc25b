-- The log's offset (events/offset.py; docs/design.md, "A log that moves"). A position is
-- ((transaction id + xid_offset) << 20) | index, and readers read below
-- (oldest running transaction id + xid_offset) << 20. On the cluster a log was written on
-- the offset is 0. Copied to a cluster whose transaction counter is lower (pg_dump,
-- logical replication, a managed service), the log would lie beyond every reader's
-- horizon and new events would be placed before it: `forum migrate` then raises the
-- offset, while a lock keeps appends out. It only ever rises. Exactly one row.
CREATE TABLE IF NOT EXISTS log_offset (
    one        boolean     PRIMARY KEY DEFAULT true CHECK (one),
    xid_offset bigint      NOT NULL DEFAULT 0 CHECK (xid_offset >= 0),
    raised_at  timestamptz
);
INSERT INTO log_offset (one) VALUES (true) ON CONFLICT (one) DO NOTHING;
