-- 9: time ranges of a venue stream filled from the venue's REST history of
-- liquidations (a backfill) rather than recorded live (twin of sqlite/0009).
CREATE TABLE backfilled_spans (
    venue TEXT NOT NULL,
    stream TEXT NOT NULL,
    start_ms BIGINT NOT NULL,
    end_ms BIGINT NOT NULL,
    PRIMARY KEY (venue, stream, start_ms)
);
