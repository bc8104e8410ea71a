-- The read-only role Grafana (or any BI tool) reads the warehouse as: SELECT on the auth0 schema,
-- nothing else. A psql script, idempotent: run it after `migrate`, as the role that runs the
-- migrations (its default privileges cover the tables and views later migrations create).
--   GRAFANA_DB_PASSWORD=… psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f grafana/reader-role.sql
-- The password comes from the environment, never from this file. `-v reader_role=name` picks
-- another role name (default grafana_reader). Compose's grafana-reader service runs it.
\set ON_ERROR_STOP on
\if :{?reader_role}
\else
\set reader_role grafana_reader
\endif
\getenv reader_password GRAFANA_DB_PASSWORD
\if :{?reader_password}
\else
do $$ begin raise exception 'GRAFANA_DB_PASSWORD is not set: set it to the password of the read-only role'; end $$;
\endif

select format('create role %I', :'reader_role') where not exists (select from pg_roles where rolname = :'reader_role') \gexec
-- Login only: no superuser, no role or database creation, no inherited rights of other roles.
select format('alter role %I with login nosuperuser nocreatedb nocreaterole noinherit noreplication nobypassrls password %L', :'reader_role', :'reader_password') \gexec
-- Belt and braces: every transaction of the role is read-only, and a runaway panel query stops.
alter role :"reader_role" set default_transaction_read_only = on;
alter role :"reader_role" set statement_timeout = '30s';

select format('grant connect on database %I to %I', current_database(), :'reader_role') \gexec
grant usage on schema auth0 to :"reader_role";
grant select on all tables in schema auth0 to :"reader_role";
-- Tables and views made by later migrations (as this role) are readable too.
alter default privileges in schema auth0 grant select on tables to :"reader_role";
