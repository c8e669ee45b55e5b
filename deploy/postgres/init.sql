-- One server, two databases: mlwatch's store and MLflow's tracking store.
--
-- The postgres image runs this once, on an empty data directory, with
-- `psql -v ON_ERROR_STOP=1 --dbname "$POSTGRES_DB"`, after it has itself created
-- POSTGRES_DB (compose sets it to `mlwatch`). So every statement must succeed whether or
-- not its database already exists: a failure aborts the first start, and on the next start
-- the image skips init for good, leaving the stack without its `mlflow` database.
-- CREATE DATABASE cannot run inside DO or a function, hence psql's \gexec, which runs the
-- statement the query returns, and returns none when the database is there.
--
-- The names are psql variables (`-v mlwatch_db=... -v mlflow_db=...`) so that a test can run
-- this very file against a shared server; the image passes none and gets the defaults.
\if :{?mlwatch_db}
\else
  \set mlwatch_db mlwatch
\endif
\if :{?mlflow_db}
\else
  \set mlflow_db mlflow
\endif

SELECT format('CREATE DATABASE %I', :'mlwatch_db')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'mlwatch_db')\gexec
SELECT format('CREATE DATABASE %I', :'mlflow_db')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'mlflow_db')\gexec
