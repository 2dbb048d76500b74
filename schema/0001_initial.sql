-- The VSP's own keys, fee xpubs, tickets and the signed request/response
-- records kept for disputes (spec §3.8, §3.9). Secrets (signing seed, cookie
-- secret, voting WIFs) are stored encrypted with a key kept outside the
-- database, so a replica or a copied file alone reveals none of them.

CREATE TABLE vsp_keys (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL              -- sealed (encrypted) value
);

CREATE TABLE fee_xpubs (
    id         INTEGER PRIMARY KEY,  -- 0 for the first, +1 per rotation
    xpub       TEXT    NOT NULL UNIQUE,
    last_index INTEGER NOT NULL DEFAULT 0 CHECK (last_index >= 0),
    retired    INTEGER NOT NULL DEFAULT 0  -- unix time, 0 = current
);

CREATE TABLE tickets (
    hash               TEXT    PRIMARY KEY CHECK (length(hash) = 64),
    purchase_height    INTEGER NOT NULL DEFAULT 0,
    commitment_address TEXT    NOT NULL,
    fee_xpub_id        INTEGER NOT NULL REFERENCES fee_xpubs(id),
    fee_address_index  INTEGER NOT NULL,
    fee_address        TEXT    NOT NULL,
    fee_amount         INTEGER NOT NULL CHECK (fee_amount >= 0),
    fee_expiration     INTEGER NOT NULL,
    confirmed          INTEGER NOT NULL DEFAULT 0 CHECK (confirmed IN (0, 1)),
    voting_wif         TEXT    NOT NULL DEFAULT '',  -- sealed
    vote_choices       TEXT    NOT NULL DEFAULT '{}',
    tspend_policy      TEXT    NOT NULL DEFAULT '{}',
    treasury_policy    TEXT    NOT NULL DEFAULT '{}',
    fee_tx_hex         TEXT    NOT NULL DEFAULT '',
    fee_tx_hash        TEXT    NOT NULL DEFAULT '',
    fee_tx_status      TEXT    NOT NULL DEFAULT 'none'
        CHECK (fee_tx_status IN ('none', 'received', 'broadcast', 'confirmed', 'error')),
    outcome            TEXT    NOT NULL DEFAULT ''
        CHECK (outcome IN ('', 'voted', 'revoked', 'expired', 'missed')),
    fee_waived         INTEGER NOT NULL DEFAULT 0 CHECK (fee_waived IN (0, 1)),
    created            INTEGER NOT NULL,
    updated            INTEGER NOT NULL,
    UNIQUE (fee_xpub_id, fee_address_index)
);

-- The block pipeline only ever looks at tickets that can still change.
CREATE INDEX tickets_unconfirmed ON tickets (hash) WHERE confirmed = 0;
CREATE INDEX tickets_fee_received ON tickets (hash) WHERE fee_tx_status = 'received';
CREATE INDEX tickets_fee_broadcast ON tickets (hash) WHERE fee_tx_status = 'broadcast';
CREATE INDEX tickets_votable ON tickets (purchase_height) WHERE fee_tx_status = 'confirmed' AND outcome = '';
CREATE INDEX tickets_outcome ON tickets (outcome, fee_tx_status);

CREATE TABLE vote_changes (
    ticket_hash  TEXT    NOT NULL,
    seq          INTEGER NOT NULL,
    request      TEXT    NOT NULL,  -- sealed: a payfee request carries the voting key
    request_sig  TEXT    NOT NULL,
    response     TEXT    NOT NULL,
    response_sig TEXT    NOT NULL,
    created      INTEGER NOT NULL,
    PRIMARY KEY (ticket_hash, seq)
);

CREATE TABLE alt_sign_addrs (
    ticket_hash  TEXT PRIMARY KEY,
    address      TEXT NOT NULL CHECK (address <> ''),
    request      TEXT NOT NULL CHECK (request <> ''),
    request_sig  TEXT NOT NULL CHECK (request_sig <> ''),
    response     TEXT NOT NULL CHECK (response <> ''),
    response_sig TEXT NOT NULL CHECK (response_sig <> ''),
    created      INTEGER NOT NULL
);
