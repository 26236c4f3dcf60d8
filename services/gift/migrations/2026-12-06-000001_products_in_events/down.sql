-- Back to products without events and orders that are only ever placed:
-- planned cancellations are dropped, and orders already cancelled become
-- placed again (the code before this migration knows no other status; their
-- GiftOrderCancelled events stay published). Products listed in scheduled
-- events are dropped with their orders.
DROP TABLE vendor_cancellations;

UPDATE gift_orders SET status = 1 WHERE status = 2;
ALTER TABLE gift_orders DROP COLUMN cancel_reason;
ALTER TABLE gift_orders DROP COLUMN cancelled_at;

DELETE FROM gift_orders WHERE product_sku IN (SELECT sku FROM products WHERE programme_event_id <> 'LAUNCH');
DELETE FROM products WHERE programme_event_id <> 'LAUNCH';
ALTER TABLE products DROP COLUMN programme_event_id;

DROP TABLE programme_events;
