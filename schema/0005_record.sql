-- The VSP's record over time, for the pictures of the home and admin pages,
-- and how each ticket was spent, for the staker's ticket page.
--
-- ticket_spends: the vote or revocation that spent one of our tickets, and at
-- what height (written with the outcome, in the same transaction).
CREATE TABLE ticket_spends (
    ticket_hash TEXT    PRIMARY KEY,
    spender     TEXT    NOT NULL CHECK (length(spender) = 64),
    height      INTEGER NOT NULL CHECK (height >= 0)
);

-- One row per UTC day (unix time // 86400): outcomes recorded that day and
-- fees confirmed that day (atoms; fee-waived tickets never count). Written by
-- the pipeline in the transaction that records each outcome or fee.
CREATE TABLE daily_record (
    day     INTEGER PRIMARY KEY,
    voted   INTEGER NOT NULL DEFAULT 0,
    missed  INTEGER NOT NULL DEFAULT 0,
    expired INTEGER NOT NULL DEFAULT 0,
    revoked INTEGER NOT NULL DEFAULT 0,
    fees    INTEGER NOT NULL DEFAULT 0
);

-- The tickets in each state, as last counted on that day (every 5 minutes).
CREATE TABLE daily_tickets (
    day      INTEGER PRIMARY KEY,
    awaiting INTEGER NOT NULL,  -- registered, fee not confirmed yet, no outcome
    voting   INTEGER NOT NULL,  -- fee confirmed, not voted yet
    voted    INTEGER NOT NULL,
    missed   INTEGER NOT NULL,
    expired  INTEGER NOT NULL,
    revoked  INTEGER NOT NULL
);

-- Each voting wallet's health checks per day, sampled every 5 minutes:
-- uptime = healthy / samples; lag = blocks behind the chain tip.
CREATE TABLE voter_days (
    day     INTEGER NOT NULL,
    voter   TEXT    NOT NULL,
    samples INTEGER NOT NULL DEFAULT 0,
    healthy INTEGER NOT NULL DEFAULT 0,
    max_lag INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, voter)
) WITHOUT ROWID;

-- Databases from before this table: their outcomes and fees by the day the
-- ticket row last changed, the best date they kept.
INSERT INTO daily_record (day, voted, missed, expired, revoked, fees)
SELECT updated / 86400,
       SUM(outcome = 'voted'), SUM(outcome = 'missed'), SUM(outcome = 'expired'), SUM(outcome = 'revoked'),
       SUM(CASE WHEN fee_tx_status = 'confirmed' AND fee_waived = 0 THEN fee_amount ELSE 0 END)
FROM tickets WHERE outcome <> '' OR (fee_tx_status = 'confirmed' AND fee_waived = 0)
GROUP BY updated / 86400;
