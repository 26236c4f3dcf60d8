DROP TABLE gift_orders;
DROP TABLE products;
