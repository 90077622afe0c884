/* test_safety: the safety options (lib/safety.c) — setting by name,
 * Destiny's messages for out-of-range values, defaults, the threshold
 * check and calendar days. */
#include <math.h>
#include <stdlib.h>

#include "safety.h"
#include "t.h"

static void set_and_validate(void)
{
    Patronsync__JobOptions o;
    char err[512];
    safety_options_init(&o);
    CHECK(o.delete_after_days == -1 && !o.thresholds_set);
    CHECK(safety_validate(&o, err, sizeof(err)) == 0);
    CHECK(safety_option_set(&o, "inactivate_missing", "", err, sizeof(err)) == 0 && o.inactivate_missing);
    CHECK(safety_option_set(&o, "days_before_inactivate", "999", err, sizeof(err)) == 0 && o.days_before_inactivate == 999);
    CHECK(safety_option_set(&o, "days_before_inactivate", "1000", err, sizeof(err)) < 0);
    CHECK_STR(err, "Number of days before inactivating patrons must be between 0 and 999.");
    CHECK(safety_option_set(&o, "days_before_inactivate", "-1", err, sizeof(err)) < 0);
    CHECK(safety_option_set(&o, "min_records", "999999", err, sizeof(err)) == 0 && o.min_records == 999999);
    CHECK(safety_option_set(&o, "min_records", "1000000", err, sizeof(err)) < 0);
    CHECK_STR(err, "Patron records read must be between 0 and 999,999.");
    CHECK(safety_option_set(&o, "min_records", "ten", err, sizeof(err)) < 0);
    CHECK(safety_option_set(&o, "delete_after_days", "never", err, sizeof(err)) == 0 && o.delete_after_days == -1);
    CHECK(safety_option_set(&o, "delete_after_days", "30", err, sizeof(err)) == 0 && o.delete_after_days == 30);
    CHECK(safety_option_set(&o, "delete_after_days", "1000", err, sizeof(err)) < 0);
    CHECK(safety_option_set(&o, "scope_sites", " LINCOES, ,WASHIES ", err, sizeof(err)) == 0);
    CHECK(o.n_scope_sites == 2 && strcmp(o.scope_sites[0], "LINCOES") == 0 && strcmp(o.scope_sites[1], "WASHIES") == 0);
    CHECK(safety_option_set(&o, "scope_sites", "ELEVENCHARS", err, sizeof(err)) < 0);
    CHECK(safety_option_set(&o, "inactive_homeroom", "Gone", err, sizeof(err)) == 0);
    CHECK(safety_validate(&o, err, sizeof(err)) == 0);
    o.inactivate_missing = 0;
    CHECK(safety_validate(&o, err, sizeof(err)) < 0);
    CHECK(strstr(err, "inactive homeroom") != NULL);
    o.inactivate_missing = 1;
    o.days_before_inactivate = 5000; /* as a stored schedule might hold it */
    CHECK(safety_validate(&o, err, sizeof(err)) < 0);
    CHECK_STR(err, "Number of days before inactivating patrons must be between 0 and 999.");
    o.days_before_inactivate = 1;
    CHECK(safety_option_set(&o, "no_such_option", "1", err, sizeof(err)) < 0);
    CHECK(!safety_is_option("no_such_option") && safety_is_option("max_remove_pct"));
    safety_option_lists_free(&o);
    CHECK(o.n_scope_sites == 0 && o.scope_sites == NULL);
}

static void thresholds(void)
{
    Patronsync__JobOptions o;
    char err[512], why[1024];
    double pct[SAFETY_NT];
    safety_options_init(&o);
    /* Whatever the fields hold, unset means the defaults. */
    o.max_update_pct = 0;
    safety_thresholds(&o, pct);
    CHECK(pct[SAFETY_T_REMOVE] == 10 && pct[SAFETY_T_UPDATE] == 75 && pct[SAFETY_T_ADD] < 0);
    Patronsync__Counts c = PATRONSYNC__COUNTS__INIT;
    c.inactivated = 60;
    c.deleted = 41;
    CHECK(safety_check(&o, 1000, &c, why, sizeof(why)) == 1);
    CHECK(strstr(why, "Patrons removed (inactivated or deleted) would be 101 of the 1000 patrons in scope (10.1%)") != NULL);
    c.deleted = 40; /* exactly 10%: not more than the limit */
    CHECK(safety_check(&o, 1000, &c, why, sizeof(why)) == 0 && why[0] == '\0');
    CHECK(safety_check(&o, 0, &c, why, sizeof(why)) == 0); /* an empty scope: a first load */
    c.updated = 751;
    CHECK(safety_check(&o, 1000, &c, why, sizeof(why)) == 1 && strstr(why, "Patrons updated") != NULL);
    /* Setting one threshold keeps the other defaults. */
    CHECK(safety_option_set(&o, "max_remove_pct", "off", err, sizeof(err)) == 0 && o.thresholds_set);
    safety_thresholds(&o, pct);
    CHECK(pct[SAFETY_T_REMOVE] < 0 && pct[SAFETY_T_UPDATE] == 75);
    CHECK(safety_option_set(&o, "max_add_pct", "2.5%", err, sizeof(err)) == 0 && o.max_add_pct == 2.5);
    CHECK(safety_option_set(&o, "max_add_pct", "101", err, sizeof(err)) < 0);
    CHECK(safety_option_set(&o, "max_add_pct", "nan", err, sizeof(err)) < 0);
    c.updated = 0;
    c.added = 30;
    CHECK(safety_check(&o, 1000, &c, why, sizeof(why)) == 1 && strstr(why, "Patrons added would be 30") != NULL);
    o.max_delete_pct = NAN;
    CHECK(safety_validate(&o, err, sizeof(err)) < 0);
}

static void days(void)
{
    int64_t a, b;
    CHECK(safety_day_number("1970-01-01", &a) == 0 && a == 0);
    CHECK(safety_day_number("2024-03-01", &a) == 0 && safety_day_number("2024-02-28", &b) == 0 && a - b == 2);
    CHECK(safety_day_number("2023-02-29", &a) < 0);
    CHECK(safety_day_number("2023-13-01", &a) < 0);
    CHECK(safety_day_number("2023-1-01", &a) < 0);
    CHECK(safety_day_number("", &a) < 0);
    char d[16];
    safety_date_of(86400 * 365, d, sizeof(d));
    CHECK_STR(d, "1971-01-01");
}

int main(void)
{
    T_RUN(set_and_validate);
    T_RUN(thresholds);
    T_RUN(days);
    T_END();
}
