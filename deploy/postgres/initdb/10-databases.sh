#!/bin/sh
# Runs once, on the first start of an empty Postgres volume (docker-entrypoint-initdb.d).
# Creates a role per tenant and the databases they own:
#   temporal  -> temporal, temporal_visibility   (schemas: the temporal-schema one-shot service)
#   seedance  -> ledger                          (the cost ledger, for a Postgres ledger URL)
# Passwords come from the environment and reach psql as variables, never spliced into SQL.
# No `set -u`: the image's entrypoint sources this file when it is not executable.

: "${TEMPORAL_DB_PASSWORD:?TEMPORAL_DB_PASSWORD is not set}"
: "${LEDGER_DB_PASSWORD:?LEDGER_DB_PASSWORD is not set}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v temporal_password="$TEMPORAL_DB_PASSWORD" \
    -v ledger_password="$LEDGER_DB_PASSWORD" <<'SQL'
CREATE ROLE temporal LOGIN PASSWORD :'temporal_password';
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;

CREATE ROLE seedance LOGIN PASSWORD :'ledger_password';
CREATE DATABASE ledger OWNER seedance;

REVOKE ALL ON DATABASE temporal, temporal_visibility, ledger FROM PUBLIC;
SQL
