-- The log. `position` is (transaction id << 20) | index within the append, so the global
-- order is the order in which writers' transactions began, and readers only read below the
-- oldest transaction still running (see events/postgres.py). No sequence, no table lock:
-- appends commit concurrently and share WAL flushes. Since 0008 the transaction id has the
-- log's offset added, so that a log moved to another cluster stays in order.
CREATE TABLE IF NOT EXISTS events (
    position    bigint      PRIMARY KEY,
    stream_id   text        NOT NULL,
    version     integer     NOT NULL CHECK (version > 0),
    type        text        NOT NULL,
    data        jsonb       NOT NULL,
    metadata    jsonb       NOT NULL DEFAULT '{}',
    recorded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_stream_version UNIQUE (stream_id, version)
);

-- What a write answered, kept so that a replayed Idempotency-Key gets the same answer and
-- appends nothing. Written in the same statement as the events it describes.
CREATE TABLE IF NOT EXISTS idempotency (
    key         text        PRIMARY KEY,
    fingerprint text        NOT NULL,
    response    bytea       NOT NULL,
    position    bigint      NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE SEQUENCE IF NOT EXISTS thread_ids;
CREATE SEQUENCE IF NOT EXISTS post_ids;
