-- Run once by the postgres image on an empty data directory: the database of the optional Unleash OSS
-- (compose.yaml, profile `unleash`). switchman's own database is POSTGRES_DB.
CREATE DATABASE unleash;
