-- The key that signs members' bearer tokens: made once, shared by every API process.
CREATE TABLE IF NOT EXISTS service_keys (
    name       text        PRIMARY KEY,
    secret     text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO service_keys (name, secret)
VALUES ('tokens', replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''))
ON CONFLICT (name) DO NOTHING;

-- /api/posts/{id} writes (edit, delete, like) find the post's thread stream by post id.
CREATE INDEX IF NOT EXISTS events_post_added_post_id
    ON events (((data->>'post_id')::bigint)) WHERE type = 'post_added';
