-- 12: the outbox of alerts and digests (issue 13 §3). A message (a platform-neutral
-- Reply as JSON) is written once per distinct content; each send of it to one chat
-- is a row with its idempotency key, written in the same transaction as the state
-- change that caused it. A sender claims rows (claimed_until_ms: its lease), sends,
-- and records when it was done and how (outcome "sent" or "failed").
CREATE TABLE outbox_messages (
    id INTEGER PRIMARY KEY,
    body TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    idem_key TEXT NOT NULL UNIQUE,
    chat_key TEXT NOT NULL,
    message_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    urgent INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    claimed_until_ms INTEGER,
    claimed_by TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    done_ms INTEGER,
    outcome TEXT
);
CREATE INDEX outbox_pending ON outbox (urgent, id) WHERE done_ms IS NULL;
CREATE INDEX outbox_done ON outbox (done_ms) WHERE done_ms IS NOT NULL;
