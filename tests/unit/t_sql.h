/* t_sql.h: a test's own look at a SQLite file, through a connection of its
 * own (the modules hand no SQLite handle out): what a user of the file
 * would see, committed rows only. */
#ifndef T_SQL_H
#define T_SQL_H

#include <sqlite3.h>
#include <stdint.h>

/* The first column of the first row of sql on the file at path, as an
 * integer; -1 when it cannot be read. */
static inline int64_t t_sql_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

#endif
