-- One database and one role per fedsync node on the shared PostgreSQL: the hub's and one per
-- city. Each role owns its database (so its migrations can create tables) and nothing else,
-- and no role but the owner (and the superuser) may connect to a node's database: a broken
-- city container can read no other city's customers.
-- Run by the postgres image (psql) only on its first start (empty pgdata volume). Passwords
-- come from the postgres service's environment (\getenv, psql 15+). For a city added later,
-- run the same three statements for it with `docker compose exec postgres psql -U postgres`.
-- The list follows sync/data/roster-gansu.csv; tests/unit/test_docker.py checks it against
-- the databases and roles named in docker-compose.yml.

\getenv password HUB_DB_PASSWORD
CREATE ROLE hub LOGIN PASSWORD :'password';
CREATE DATABASE hub OWNER hub;
REVOKE ALL ON DATABASE hub FROM PUBLIC;

\getenv password CITY_620100_DB_PASSWORD
CREATE ROLE city_620100 LOGIN PASSWORD :'password';
CREATE DATABASE city_620100 OWNER city_620100;
REVOKE ALL ON DATABASE city_620100 FROM PUBLIC;

\getenv password CITY_620200_DB_PASSWORD
CREATE ROLE city_620200 LOGIN PASSWORD :'password';
CREATE DATABASE city_620200 OWNER city_620200;
REVOKE ALL ON DATABASE city_620200 FROM PUBLIC;

\getenv password CITY_620300_DB_PASSWORD
CREATE ROLE city_620300 LOGIN PASSWORD :'password';
CREATE DATABASE city_620300 OWNER city_620300;
REVOKE ALL ON DATABASE city_620300 FROM PUBLIC;

\getenv password CITY_620400_DB_PASSWORD
CREATE ROLE city_620400 LOGIN PASSWORD :'password';
CREATE DATABASE city_620400 OWNER city_620400;
REVOKE ALL ON DATABASE city_620400 FROM PUBLIC;

\getenv password CITY_620500_DB_PASSWORD
CREATE ROLE city_620500 LOGIN PASSWORD :'password';
CREATE DATABASE city_620500 OWNER city_620500;
REVOKE ALL ON DATABASE city_620500 FROM PUBLIC;

\getenv password CITY_620600_DB_PASSWORD
CREATE ROLE city_620600 LOGIN PASSWORD :'password';
CREATE DATABASE city_620600 OWNER city_620600;
REVOKE ALL ON DATABASE city_620600 FROM PUBLIC;

\getenv password CITY_620700_DB_PASSWORD
CREATE ROLE city_620700 LOGIN PASSWORD :'password';
CREATE DATABASE city_620700 OWNER city_620700;
REVOKE ALL ON DATABASE city_620700 FROM PUBLIC;

\getenv password CITY_620800_DB_PASSWORD
CREATE ROLE city_620800 LOGIN PASSWORD :'password';
CREATE DATABASE city_620800 OWNER city_620800;
REVOKE ALL ON DATABASE city_620800 FROM PUBLIC;

\getenv password CITY_620900_DB_PASSWORD
CREATE ROLE city_620900 LOGIN PASSWORD :'password';
CREATE DATABASE city_620900 OWNER city_620900;
REVOKE ALL ON DATABASE city_620900 FROM PUBLIC;

\getenv password CITY_621000_DB_PASSWORD
CREATE ROLE city_621000 LOGIN PASSWORD :'password';
CREATE DATABASE city_621000 OWNER city_621000;
REVOKE ALL ON DATABASE city_621000 FROM PUBLIC;

\getenv password CITY_621100_DB_PASSWORD
CREATE ROLE city_621100 LOGIN PASSWORD :'password';
CREATE DATABASE city_621100 OWNER city_621100;
REVOKE ALL ON DATABASE city_621100 FROM PUBLIC;

\getenv password CITY_621200_DB_PASSWORD
CREATE ROLE city_621200 LOGIN PASSWORD :'password';
CREATE DATABASE city_621200 OWNER city_621200;
REVOKE ALL ON DATABASE city_621200 FROM PUBLIC;

\getenv password CITY_622900_DB_PASSWORD
CREATE ROLE city_622900 LOGIN PASSWORD :'password';
CREATE DATABASE city_622900 OWNER city_622900;
REVOKE ALL ON DATABASE city_622900 FROM PUBLIC;

\getenv password CITY_623000_DB_PASSWORD
CREATE ROLE city_623000 LOGIN PASSWORD :'password';
CREATE DATABASE city_623000 OWNER city_623000;
REVOKE ALL ON DATABASE city_623000 FROM PUBLIC;
