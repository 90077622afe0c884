#!/usr/bin/env python3
"""baseline.py - the loader a district's IT person would write in Python.

    baseline.py [--encoding cp1252] [--schema bench/schema.sql] STORE.db FILE.csv

The csv module reads FILE (in its encoding, header skipped), the sqlite3
module upserts every row, `INSERT ... ON CONFLICT(district_id) DO UPDATE`,
in one transaction, with the columns and SQLite settings of bench/schema.sql.
Prints one JSON line: {"method": "python", "rows": N, "skipped": N, "seconds": S}.
"""
import argparse
import csv
import json
import os
import sqlite3
import sys
import time

# CSV column k (0-based) -> store column, as students.properties maps them.
COLUMNS = ["district_id", "barcode", "last_name", "first_name", "middle_name",
           "nickname", "patron_type", "access_level", "site_short_name", "homeroom",
           "grade_level", "gender", "birthdate", "graduation_year", "card_expires",
           "email_primary", "address_primary_phone_primary", "address_primary_line1",
           "address_primary_city", "address_primary_state", "address_primary_zip_code",
           "user_defined1"]

UPSERT = (
    "INSERT INTO patrons (" + ", ".join(COLUMNS) + ", status) VALUES ("
    + ", ".join("NULLIF(?, '')" if c == "barcode" else "?" for c in COLUMNS)
    + ", 'A') ON CONFLICT(district_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[1:] + ["status"]))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--encoding", default="cp1252")
    ap.add_argument("--schema", default=os.path.join(here, "schema.sql"))
    ap.add_argument("store")
    ap.add_argument("csv")
    a = ap.parse_args()

    t0 = time.monotonic()
    with open(a.schema, encoding="utf-8") as f:
        schema = f.read()
    conn = sqlite3.connect(a.store, isolation_level=None)
    conn.executescript(schema)
    n = skipped = 0

    def rows(reader):
        nonlocal n, skipped
        for rec in reader:
            if len(rec) != len(COLUMNS):
                skipped += 1
                continue
            n += 1
            yield rec

    conn.execute("BEGIN")
    with open(a.csv, newline="", encoding=a.encoding) as f:
        reader = csv.reader(f)
        next(reader, None)  # header
        conn.executemany(UPSERT, rows(reader))
    conn.execute("COMMIT")
    conn.close()
    print(json.dumps({"method": "python", "rows": n, "skipped": skipped,
                      "seconds": round(time.monotonic() - t0, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
