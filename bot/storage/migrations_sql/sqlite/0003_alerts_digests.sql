-- 3: threshold alert rules (with their matching state) and daily digest schedules.
-- `state` is the engine's JSON state of a rule (armed, last fired), saved so a
-- restart neither re-fires nor forgets. `params` holds kind-specific values.
CREATE TABLE alert_rules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_key TEXT NOT NULL,
    user_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    asset TEXT,
    threshold_usd REAL NOT NULL,
    window_ms INTEGER NOT NULL DEFAULT 0,
    share REAL NOT NULL DEFAULT 0,
    paused INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT '{}',
    created_ms INTEGER NOT NULL
);
CREATE INDEX alert_rules_by_chat ON alert_rules (chat_key);
CREATE INDEX alert_rules_by_user ON alert_rules (user_key);

-- One digest per chat: local time of day in an IANA zone; `last_sent_local_date`
-- (YYYY-MM-DD in that zone) guards against double sends (DST, restarts).
CREATE TABLE digest_schedules (
    chat_key TEXT PRIMARY KEY,
    local_time TEXT NOT NULL,
    tz TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    last_sent_local_date TEXT,
    locale TEXT NOT NULL DEFAULT 'en',
    updated_ms INTEGER NOT NULL DEFAULT 0
);
