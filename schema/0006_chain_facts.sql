-- The record follows the chain (issue 31): every fact the block pipeline
-- takes from a block names that block, and the pipeline keeps the hash of each
-- block it scanned, so that when the chain replaces blocks it finds the fork
-- point and undoes exactly what it recorded from the blocks that left.
--
-- scanned_blocks: the hash of every block the pipeline read, as far back as a
-- recorded fact can be undone (a window of blocks below the tip; older rows go).
CREATE TABLE scanned_blocks (
    height INTEGER PRIMARY KEY,
    hash   TEXT    NOT NULL CHECK (length(hash) = 64)
) WITHOUT ROWID;

-- The block of a ticket's purchase; of its fee, with the time the fee was
-- counted in the day's revenue (to take it back from that day if undone).
-- Rows from before this table keep '' and 0: their facts are older than any
-- reorganisation the pipeline can see, and are never undone.
ALTER TABLE tickets ADD COLUMN purchase_block TEXT NOT NULL DEFAULT '';
ALTER TABLE tickets ADD COLUMN fee_height INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN fee_block TEXT NOT NULL DEFAULT '';
ALTER TABLE tickets ADD COLUMN fee_counted INTEGER NOT NULL DEFAULT 0;

-- The block of the vote or revocation, and when its outcome was tallied.
ALTER TABLE ticket_spends ADD COLUMN block TEXT NOT NULL DEFAULT '';
ALTER TABLE ticket_spends ADD COLUMN recorded INTEGER NOT NULL DEFAULT 0;
CREATE INDEX ticket_spends_height ON ticket_spends (height);
CREATE INDEX tickets_fee_height ON tickets (fee_height) WHERE fee_height > 0;
CREATE INDEX tickets_purchase_block ON tickets (purchase_height) WHERE purchase_block <> '';
