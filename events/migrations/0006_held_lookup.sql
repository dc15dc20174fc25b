-- /api/held/{id}/approve|reject find the held post's thread stream by its held id.
CREATE INDEX IF NOT EXISTS events_held_held_id
    ON events (((data->>'held_id')::bigint)) WHERE type IN ('post_held', 'thread_held');
