-- Only entries that can expire are the expiry job's work: an entry from an
-- event with no end is left out of its index instead of taking a place in
-- it ordered by its points, one page of the index per distinct amount in
-- each commit (docs/performance.md, section 18). The job's query compares
-- expires_at, which both databases take to imply IS NOT NULL.
DROP INDEX wallet_entries_due;
CREATE INDEX wallet_entries_due ON wallet_entries (expires_at, remaining) WHERE expires_at IS NOT NULL;
