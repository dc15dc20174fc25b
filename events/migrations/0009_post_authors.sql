-- A member's posts by author, for `GET /api/users/{name}/export` (service/data_rights.py):
-- one index scan instead of a read of the whole log. Only post events are indexed, so
-- appends of other events pay nothing.
CREATE INDEX IF NOT EXISTS events_post_author ON events (lower(data->>'author'))
    WHERE type IN ('post_added', 'post_edited', 'post_deleted');
