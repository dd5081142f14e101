#!/bin/sh
# One-shot (temporalio/admin-tools): bring the Temporal persistence and visibility schemas of
# the Postgres databases up to this server version. Safe to rerun: applied versions are skipped.
# The databases themselves are created by deploy/postgres/initdb/10-databases.sh.
# Connection: SQL_PLUGIN, SQL_HOST, SQL_PORT, SQL_USER, SQL_PASSWORD (read by temporal-sql-tool).
set -eu

schema_root=/etc/temporal/schema/postgresql/v12

attempts=0
until nc -z "$SQL_HOST" "$SQL_PORT"; do
    attempts=$((attempts + 1))
    if [ "$attempts" -ge 30 ]; then
        echo "temporal-schema: Postgres at $SQL_HOST:$SQL_PORT did not answer" >&2
        exit 1
    fi
    sleep 2
done

migrate() {
    db=$1
    dir=$2
    echo "temporal-schema: $db"
    temporal-sql-tool --db "$db" setup-schema -v 0.0
    temporal-sql-tool --db "$db" update-schema -d "$schema_root/$dir/versioned"
}

migrate temporal temporal
migrate temporal_visibility visibility
echo "temporal-schema: done"
