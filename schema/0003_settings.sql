-- Settings the operator changes from the admin pages (closing the VSP), and
-- an audit trail of every admin action: who, from where, when, what.
CREATE TABLE vsp_settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE admin_log (
    id      INTEGER PRIMARY KEY,
    time    INTEGER NOT NULL,
    who     TEXT    NOT NULL,
    action  TEXT    NOT NULL,
    detail  TEXT    NOT NULL DEFAULT ''
);

-- The operator's own fee-waived tickets waiting to become votable (kept cheap for the pipeline).
CREATE INDEX tickets_waived_pending ON tickets (hash) WHERE fee_waived = 1 AND fee_tx_status = 'none';
