-- One database per service: each service owns its tables and nobody reads
-- another's.
CREATE DATABASE reel_users;
CREATE DATABASE reel_logs;
CREATE DATABASE reel_storage;
CREATE DATABASE reel_usage;
CREATE DATABASE reel_videos;
