#!/usr/bin/env bash
# sqlonly.sh - the SQL-only path: the sqlite3 command-line shell does it all.
#
#   sqlonly.sh [--encoding cp1252] [--schema bench/schema.sql] STORE.db FILE.csv
#
# 1. The shell's .import needs UTF-8: a cp1252 (or other non-UTF-8) file is
#    converted with iconv first, into a file beside the store (counted in the
#    time, removed afterwards).
# 2. `.import --csv --skip 1` into a staging table (TEMP: with
#    temp_store=MEMORY it lives in memory, not in the store).
# 3. One `INSERT INTO patrons ... SELECT ... FROM staging ON CONFLICT(district_id)
#    DO UPDATE`, in one transaction, with the settings of bench/schema.sql.
# Prints one JSON line: {"method": "sqlonly", "rows": N, "seconds": S}.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
enc=cp1252
schema=$here/schema.sql
while [ $# -gt 0 ]; do
    case $1 in
        --encoding) enc=$2; shift 2 ;;
        --schema) schema=$2; shift 2 ;;
        --) shift; break ;;
        -*) echo "sqlonly.sh: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
if [ $# -ne 2 ]; then
    echo "usage: sqlonly.sh [--encoding ENC] [--schema FILE] STORE.db FILE.csv" >&2
    exit 2
fi
store=$1
input=$2
t0=$(date +%s.%N)

src=$input
tmp=
case ${enc,,} in
    utf-8|utf8|ascii) ;;
    *)
        tmp=$store.import-utf8.csv
        trap 'rm -f "$tmp"' EXIT
        iconv -f "$enc" -t UTF-8 "$input" > "$tmp"
        src=$tmp
        ;;
esac

# CSV column k -> store column, as students.properties maps them.
cols="district_id, barcode, last_name, first_name, middle_name, nickname, patron_type,
      access_level, site_short_name, homeroom, grade_level, gender, birthdate,
      graduation_year, card_expires, email_primary, address_primary_phone_primary,
      address_primary_line1, address_primary_city, address_primary_state,
      address_primary_zip_code, user_defined1"
staging_cols=$(printf 'c%d TEXT, ' $(seq 1 22)); staging_cols=${staging_cols%, }
select_cols="c1, NULLIF(c2, ''), $(printf 'c%d, ' $(seq 3 22))"; select_cols=${select_cols%, }
set_list=$(printf '%s\n' "$cols" | tr -d ' \n' | tr ',' '\n' | tail -n +2 |
           awk '{ printf "%s%s = excluded.%s", (NR > 1 ? ", " : ""), $1, $1 }')

# Quote the file names for the shell's dot-commands.
q() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"; }

rows=$(sqlite3 -batch -bail "$store" <<EOF
.output /dev/null
.read $(q "$schema")
.output stdout
CREATE TEMP TABLE staging ($staging_cols);
.import --csv --skip 1 --schema temp $(q "$src") staging
BEGIN;
INSERT INTO patrons ($cols, status)
    SELECT $select_cols, 'A' FROM temp.staging WHERE true
    ON CONFLICT(district_id) DO UPDATE SET $set_list, status = excluded.status;
COMMIT;
SELECT count(*) FROM temp.staging;
EOF
)
t1=$(date +%s.%N)
awk -v r="$rows" -v a="$t0" -v b="$t1" 'BEGIN { printf "{\"method\": \"sqlonly\", \"rows\": %d, \"seconds\": %.3f}\n", r, b - a }'
