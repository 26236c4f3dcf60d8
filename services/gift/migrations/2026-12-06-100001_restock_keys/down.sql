DROP TABLE restocks;
