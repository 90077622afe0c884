/* slots: when a schedule's local wall-clock time falls, as UTC instants,
 * under the district's time zone and its daylight-saving rules. */
#ifndef SLOTS_H
#define SLOTS_H

#include <stddef.h>
#include <stdint.h>

enum slot_mode { SLOT_NONE = 0, SLOT_FULL = 1, SLOT_INCREMENTAL = 2 };

typedef struct {
    unsigned char day[7]; /* by weekday, 0 = Sunday .. 6 = Saturday: enum slot_mode */
    int minute;           /* local time of day, minutes after midnight (0..1439) */
} slot_pattern;

typedef struct {
    int64_t when;        /* UTC seconds since the epoch */
    char local_date[11]; /* the local calendar day the slot belongs to, YYYY-MM-DD */
    enum slot_mode mode;
} slot;

/* The first slot whose instant is strictly after `after` (UTC seconds), in
 * IANA zone tz. A local time that does not exist that day (spring forward)
 * falls at the first valid instant after it; a time that occurs twice (fall
 * back) falls once, at its first occurrence. 0, or -1 with err (unknown
 * zone, pattern without any day).
 *
 * Precisely: the instant for local day D is the smallest instant whose wall
 * clock reads D at the pattern's minute or later. Slots come out in local-day
 * order with non-decreasing instants, one per enabled local day, so walking
 * (after = previous slot's when) visits each enabled day exactly once. The
 * one exception: where a gap swallows a midnight (Pacific/Apia skipped
 * 2011-12-30 whole) two days' slots can share an instant; that instant is
 * one slot, the earlier day's.
 * Also -1 for a minute outside 0..1439, a day mode outside enum slot_mode,
 * `after` outside the years 0001..9999, a zone file that is not TZif or is
 * a leap-second ("right/") zone. Zone data is read from
 * /usr/share/zoneinfo/<tz> once per tz and cached for the process; not
 * thread-safe (the scheduler is single-threaded). */
int slots_next(const slot_pattern *p, const char *tz, int64_t after, slot *out, char *err, size_t errlen);

/* Whether tz is a zone this machine knows (0/1): an IANA-style name
 * (letters, digits, "_-+." in '/'-separated parts; no empty part, none
 * starting with '.', so no ".." and no leading '/') of a TZif file under
 * /usr/share/zoneinfo (Debian package tzdata). Loads and caches it. */
int slots_zone_known(const char *tz);

/* Addition: the UTC offset (seconds east, e.g. -18000 for EST) in effect in
 * tz at instant `when`, to show slots in local time. 0 / -1 with err. */
int slots_utc_offset(const char *tz, int64_t when, int *offset, char *err, size_t errlen);

/* Addition: free every cached zone (at exit, or to pick up a tzdata update
 * without a restart). Later calls load zones again. */
void slots_cache_clear(void);

#endif
