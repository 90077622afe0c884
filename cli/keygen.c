/* keygen: the CURVE keys of `patronctl keygen` (keygen.h), made by
 * lib/curve.c; this file only says what was made and where. */
#include "keygen.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "curve.h"

/* The files curve_keygen makes, in the order they are reported. */
static const char *const keygen_files[] = {
    "broker.key", "broker.pub", "scheduler.key", "scheduler.pub", "worker.key",   "worker.pub",
    "client.key", "client.pub", "jobs.allow",    "workers.allow", "control.allow",
};
#define KEYGEN_NFILES (sizeof(keygen_files) / sizeof(keygen_files[0]))

/* The allow-list a role's public key goes on (NULL: a server's key, which
 * its clients hold instead). */
static const char *allow_list_of(const char *role)
{
    if (strcmp(role, "worker") == 0)
        return "workers.allow";
    if (strcmp(role, "scheduler") == 0)
        return "jobs.allow";
    if (strcmp(role, "client") == 0)
        return "control.allow";
    return NULL;
}

static void json_str(const char *s)
{
    strbuf sb;
    sb_init(&sb);
    sb_json_str(&sb, s, strlen(s));
    fputs(sb_str(&sb), stdout);
    sb_free(&sb);
}

static int keygen_all(const ps_config *cfg, int json)
{
    const char *dir = cfg->keys_dir;
    int there[KEYGEN_NFILES];
    for (size_t i = 0; i < KEYGEN_NFILES; i++) {
        char path[CONFIG_STR + 32];
        snprintf(path, sizeof(path), "%s/%s", dir, keygen_files[i]);
        there[i] = access(path, F_OK) == 0;
    }
    char err[ERRLEN];
    if (curve_keygen(cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "patronctl keygen: %s\n", err);
        return PS_EXIT_FAILED;
    }
    size_t made = 0;
    for (size_t i = 0; i < KEYGEN_NFILES; i++)
        made += !there[i];
    if (json) {
        fputs("{\"keys_dir\":", stdout);
        json_str(dir);
        for (int pass = 0; pass < 2; pass++) {
            fputs(pass == 0 ? ",\"made\":[" : "],\"kept\":[", stdout);
            int first = 1;
            for (size_t i = 0; i < KEYGEN_NFILES; i++) {
                if (there[i] != pass)
                    continue;
                if (!first)
                    fputs(",", stdout);
                json_str(keygen_files[i]);
                first = 0;
            }
        }
        fputs("]}\n", stdout);
        return PS_EXIT_OK;
    }
    if (made == 0) {
        printf("nothing to make: every CURVE key and allow-list is there under %s\n", dir);
        return PS_EXIT_OK;
    }
    for (size_t i = 0; i < KEYGEN_NFILES; i++)
        if (!there[i])
            printf("made %s/%s\n", dir, keygen_files[i]);
    printf("%zu made, %zu kept under %s (the .key files are secret: mode 0600)\n", made, KEYGEN_NFILES - made, dir);
    return PS_EXIT_OK;
}

static int keygen_role(const ps_config *cfg, const char *role, int json)
{
    static const char *const roles[] = {"broker", "scheduler", "worker", "client"};
    int known = 0;
    for (size_t i = 0; i < 4; i++)
        known |= strcmp(role, roles[i]) == 0;
    if (!known) {
        fprintf(stderr, "patronctl keygen: --role '%s': expected broker, scheduler, worker or client\n", role);
        return PS_EXIT_USAGE;
    }
    curve_keypair kp;
    char err[ERRLEN];
    int made = curve_keygen_role(cfg->keys_dir, role, &kp, err, sizeof(err));
    sodium_memzero(kp.sec, sizeof(kp.sec));
    if (made < 0) {
        fprintf(stderr, "patronctl keygen: %s\n", err);
        return PS_EXIT_FAILED;
    }
    const char *list = allow_list_of(role);
    char line[CURVE_Z85 + 32];
    snprintf(line, sizeof(line), "%s %s", kp.pub, role);
    if (json) {
        fputs("{\"role\":", stdout);
        json_str(role);
        fputs(",\"keys_dir\":", stdout);
        json_str(cfg->keys_dir);
        printf(",\"made\":%s,\"public\":", made ? "true" : "false");
        json_str(kp.pub);
        fputs(",\"allow_list\":", stdout);
        if (list)
            json_str(list);
        else
            fputs("null", stdout);
        fputs(",\"allow_line\":", stdout);
        if (list)
            json_str(line);
        else
            fputs("null", stdout);
        fputs("}\n", stdout);
        return PS_EXIT_OK;
    }
    printf("%s %s/%s.key and %s.pub\n", made ? "made" : "kept (already there)", cfg->keys_dir, role, role);
    if (list) {
        printf("add this line to the %s's %s (docs/SECURITY.md):\n%s\n",
               strcmp(role, "client") == 0 ? "scheduler" : "broker", list, line);
        if (strcmp(role, "client") == 0)
            printf("(and to the broker's jobs.allow for 'patronctl status' and 'up' to ping it)\n");
    } else {
        printf("copy %s/broker.pub to the keys folder of each scheduler, worker and client:\n%s\n", cfg->keys_dir,
               kp.pub);
    }
    return PS_EXIT_OK;
}

int keygen_cmd(const cli_ctx *c)
{
    const char *role = cli_value(c, "--role");
    int json = cli_flag(c, "--json");
    return role ? keygen_role(c->cfg, role, json) : keygen_all(c->cfg, json);
}
