-- 6: each chat's own time zone (/tz) (twin of sqlite/0006).
CREATE TABLE chat_timezones (
    chat_key TEXT PRIMARY KEY,
    tz TEXT NOT NULL,
    updated_ms BIGINT NOT NULL DEFAULT 0
);
INSERT INTO chat_timezones (chat_key, tz, updated_ms)
    SELECT chat_key, tz, updated_ms FROM digest_schedules WHERE tz <> 'UTC';
