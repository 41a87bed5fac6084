-- requires: server
-- Access roles (seed 000, adapted). Roles live in the server's access storage, not in chdb, so
-- this migration runs only against a server, whose user needs access management rights.
CREATE ROLE IF NOT EXISTS dashboard_reader;
GRANT SELECT ON ${database}.* TO dashboard_reader;

CREATE ROLE IF NOT EXISTS service_writer;
GRANT SELECT, INSERT ON ${database}.* TO service_writer;

CREATE ROLE IF NOT EXISTS schema_admin;
GRANT ALL ON ${database}.* TO schema_admin;
