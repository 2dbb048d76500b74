-- One row per hour in which the frontend was running: the uptime of the
-- listing rules ("a week on testnet") is read from here.
CREATE TABLE uptime_hours (
    hour INTEGER PRIMARY KEY  -- unix time // 3600
);
