-- Back to orders paid by one reward: orders paid by wallet exchanges are
-- dropped (the code before this migration cannot tell their payer).
DELETE FROM vendor_cancellations WHERE order_id IN (SELECT order_id FROM gift_orders WHERE exchange_id IS NOT NULL);
DELETE FROM gift_orders WHERE exchange_id IS NOT NULL;
ALTER TABLE gift_orders DROP COLUMN exchange_id;
