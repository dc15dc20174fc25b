-- Members' sessions: operational data, not events (a session is a credential, and
-- credentials stay out of the log). Only the SHA-256 of a token is kept: a copy of this
-- table signs nobody in. `member` is the member's stream id (`member-<folded name>`), so
-- one statement reads a session together with its member's current stream version.
CREATE TABLE IF NOT EXISTS sessions (
    token_hash bytea       PRIMARY KEY,
    member     text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
-- "Sign out everywhere" and the clean-up at sign-in look a member's sessions up.
CREATE INDEX IF NOT EXISTS sessions_member ON sessions (member);

-- The suspension events of the log, for GET /api/suspensions (service/suspensions.py):
-- the newest such event per member stream, read through this small index only.
CREATE INDEX IF NOT EXISTS events_suspensions ON events (stream_id, version)
    WHERE type IN ('member_suspended', 'member_suspension_lifted');
