/* winscan: the work file's records, found with csvscan one window at a
 * time (winscan.h). */
#include "winscan.h"

#include <string.h>

/* The work file is scanned this many bytes at a time (more for a longer
 * record): csvscan_init reads its whole buffer (memchr for quotes, line
 * ends and NULs), which would map every page of the file at once. */
#define SCAN_WINDOW ((size_t)4 << 20)

static void winscan_window(winscan *w, size_t off, size_t len, uint64_t line)
{
    w->win_off = off;
    w->win_len = len < w->len - off ? len : w->len - off;
    w->win_line = line;
    w->have_held = 0;
    csvscan_init(&w->sc, w->buf + off, w->win_len, line, w->max_record);
}

void winscan_init(winscan *w, const char *buf, size_t len, size_t max_record)
{
    memset(w, 0, sizeof(*w));
    w->buf = buf;
    w->len = len;
    w->max_record = max_record;
    winscan_window(w, 0, SCAN_WINDOW, 1);
}

/* The next record, its offset in the whole file: 1 and *out, 0 at the end. */
int winscan_next(winscan *w, csvscan_rec *out)
{
    for (;;) {
        int last = w->win_off + w->win_len >= w->len; /* this window ends where the file does */
        csvscan_rec r;
        if (csvscan_next(&w->sc, &r)) {
            r.off += w->win_off;
            if (last) {
                *out = r;
                return 1;
            }
            if (w->have_held) {
                *out = w->held;
                w->held = r;
                return 1;
            }
            w->held = r;
            w->have_held = 1;
            continue;
        }
        if (last)
            return 0;
        if (w->have_held && w->held.off > w->win_off)
            winscan_window(w, w->held.off, SCAN_WINDOW, w->held.line);
        else
            winscan_window(w, w->win_off, w->win_len * 2, w->win_line);
    }
}
