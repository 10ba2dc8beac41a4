-- 9: time ranges of a venue stream filled from the venue's REST history of
-- liquidations (a backfill) rather than recorded live. Kept apart from
-- recorded_spans so /status can say which stretches were backfilled, and so
-- `liqbot health` still judges only the live recording.
CREATE TABLE backfilled_spans (
    venue TEXT NOT NULL,
    stream TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    PRIMARY KEY (venue, stream, start_ms)
);
