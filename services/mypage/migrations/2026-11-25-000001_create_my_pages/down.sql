DROP TABLE my_pages;
