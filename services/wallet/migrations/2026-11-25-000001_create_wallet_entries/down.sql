DROP TABLE wallet_entries;
