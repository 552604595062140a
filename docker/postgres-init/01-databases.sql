-- One database per fedsync node on the shared PostgreSQL: the hub's and one per city.
-- Run by the postgres image only on its first start (empty pgdata volume); for a city
-- added later run e.g.:
--   docker compose -f docker/docker-compose.yml exec postgres createdb -U postgres city_CODE
-- The list follows sync/data/roster-gansu.csv; tests/unit/test_docker.py checks it
-- against the databases named in docker-compose.yml.

CREATE DATABASE hub;
CREATE DATABASE city_620100;
CREATE DATABASE city_620200;
CREATE DATABASE city_620300;
CREATE DATABASE city_620400;
CREATE DATABASE city_620500;
CREATE DATABASE city_620600;
CREATE DATABASE city_620700;
CREATE DATABASE city_620800;
CREATE DATABASE city_620900;
CREATE DATABASE city_621000;
CREATE DATABASE city_621100;
CREATE DATABASE city_621200;
CREATE DATABASE city_622900;
CREATE DATABASE city_623000;
