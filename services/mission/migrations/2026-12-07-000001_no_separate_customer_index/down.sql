CREATE INDEX missions_by_customer ON missions (customer_id, achieved_at);
