-- 13: a send may wait for its moment (twin of sqlite/0013). A big-order alert is
-- written when its group's first order arrives and revised as orders join; senders
-- claim it only from due_ms on (NULL: at once), which the leader sets to "now" when
-- the group closes, and which otherwise lets a successor send the group of a
-- leader that died.
ALTER TABLE outbox ADD COLUMN due_ms BIGINT;
