#!/usr/bin/env bash
# One role and one database per service: `prefect` (Prefect server) and `mlflow` (MLflow tracking
# server), each owned by its own login role, so neither service can touch the other's tables.
#
# The postgres image runs this once, on an empty data directory, from /docker-entrypoint-initdb.d
# (see infra/docker-compose.yml). It is also safe to run by hand against any server, as often as
# you like (existing roles and databases are left alone), e.g. for a managed PostgreSQL:
#   PGHOST=db.internal PGUSER=admin PGPASSWORD=... POSTGRES_USER=admin \
#   PREFECT_DB_PASSWORD=... MLFLOW_DB_PASSWORD=... bash infra/postgres/init-databases.sh
set -euo pipefail

: "${PREFECT_DB_PASSWORD:?set PREFECT_DB_PASSWORD (the prefect role's password)}"
: "${MLFLOW_DB_PASSWORD:?set MLFLOW_DB_PASSWORD (the mlflow role's password)}"

admin_psql() {
  psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" "$@"
}

# create_service_db NAME PASSWORD [EXTENSION...]
create_service_db() {
  local name=$1 password=$2
  shift 2
  # psql variables (:'name', :"name") quote the values, so a password is never spliced into SQL
  admin_psql --dbname "${POSTGRES_DB:-postgres}" -v name="$name" -v password="$password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'name', :'password')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'name') \gexec
SELECT format('CREATE DATABASE %I OWNER %I ENCODING %L TEMPLATE template0', :'name', :'name', 'UTF8')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name') \gexec
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
SQL
  local extension
  for extension in "$@"; do
    admin_psql --dbname "$name" -c "CREATE EXTENSION IF NOT EXISTS ${extension}"
  done
  echo "init-databases: database ${name} ready (owner ${name})"
}

# Prefect's migrations create pg_trgm themselves when allowed; creating it here as the superuser
# keeps them working on servers where the database owner may not create extensions.
create_service_db prefect "$PREFECT_DB_PASSWORD" pg_trgm
create_service_db mlflow "$MLFLOW_DB_PASSWORD"
