-- A player's missions are found by the (customer, code, slot) key, which
-- starts with the customer; the list's order by achievement time is a sort
-- of one player's rows. A second index by customer cost every achievement
-- a page of its own in each commit (docs/performance.md, section 18).
DROP INDEX missions_by_customer;
