/* winscan: the work file's records, found with csvscan one window at a
 * time, exactly as one scan of the whole file finds them: a window starts
 * at a record (the file's start, line 1, for the first), and scanning from
 * a record's offset with its line gives the same records and lines
 * (csvscan.h). A record is given out once the next one shows up in the
 * same window (so its end was not the window's); the window's last record
 * starts the next window. A window that holds no record past its first
 * grows twice as long from the same start; the one that reaches the
 * file's end gives out everything. */
#ifndef BROKER_WINSCAN_H
#define BROKER_WINSCAN_H

#include <stddef.h>
#include <stdint.h>

#include "csvscan.h"

typedef struct {
    const char *buf;
    size_t len, max_record;
    csvscan sc;         /* the window's scan; sc.line is the file's line */
    size_t win_off;     /* the window: buf[win_off .. win_off + win_len) */
    size_t win_len;
    uint64_t win_line;  /* the line it starts on */
    csvscan_rec held;   /* its latest record, not yet known complete */
    int have_held;
} winscan;

/* Scan buf (len bytes; records of at most max_record bytes). */
void winscan_init(winscan *w, const char *buf, size_t len, size_t max_record);
/* The next record, its offset in the whole file: 1 and *out, 0 at the end. */
int winscan_next(winscan *w, csvscan_rec *out);

#endif
