DROP TABLE missions;
DROP TABLE mission_definitions;
