-- bench/schema.sql: the patrons table and the SQLite settings that all three
-- baselines (baseline.py, sqlonly.sh, cref.c) use. Every method runs this
-- whole file on each connection it opens, before its transaction: the
-- pragmas are per connection (journal_mode=WAL also sticks to the file) and
-- the table is created only when the store is new.
-- Columns: patronsync's store columns for the fields the generator's 22 CSV
-- columns map to (see bench/README.md for the mapping).
PRAGMA journal_mode=WAL;
PRAGMA synchronous=NORMAL;
PRAGMA cache_size=-262144;
PRAGMA temp_store=MEMORY;

CREATE TABLE IF NOT EXISTS patrons (
    id INTEGER PRIMARY KEY,
    district_id TEXT NOT NULL UNIQUE,
    barcode TEXT UNIQUE,
    site_short_name TEXT,
    last_name TEXT,
    first_name TEXT,
    middle_name TEXT,
    nickname TEXT,
    patron_type TEXT,
    access_level TEXT,
    status TEXT,
    gender TEXT,
    homeroom TEXT,
    grade_level TEXT,
    card_expires TEXT,
    graduation_year TEXT,
    birthdate TEXT,
    user_defined1 TEXT,
    email_primary TEXT,
    address_primary_phone_primary TEXT,
    address_primary_line1 TEXT,
    address_primary_city TEXT,
    address_primary_state TEXT,
    address_primary_zip_code TEXT
);
