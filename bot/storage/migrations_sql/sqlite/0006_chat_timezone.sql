-- 6: each chat's own time zone (/tz), for every time liqbot shows it. Chats that
-- chose a digest zone keep it as their chat zone.
CREATE TABLE chat_timezones (
    chat_key TEXT PRIMARY KEY,
    tz TEXT NOT NULL,
    updated_ms INTEGER NOT NULL DEFAULT 0
);
INSERT INTO chat_timezones (chat_key, tz, updated_ms)
    SELECT chat_key, tz, updated_ms FROM digest_schedules WHERE tz <> 'UTC';
