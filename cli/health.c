/* health: `patronctl health` — scheduler, broker, a worker and Redis each
 * asked, a line per part — and `patronctl status` — a `systemctl
 * status`-like overview from DATA/run's pid files and DATA/logs (no Redis
 * needed), with Redis's word on the workers when it answers. */
#include "health.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster.h"
#include "status.h"

/* ---- health ---- */

typedef struct {
    const char *part;
    int ok;
    char why[CONFIG_STR + ERRLEN];
} health_line;

static void health_check(const ps_config *cfg, health_line h[4])
{
    char where[300], err[ERRLEN] = "";
    status_where_url(cfg->redis_url, where, sizeof(where));
    h[0].part = "redis";
    int r = cluster_redis_ping(cfg, err, sizeof(err));
    h[0].ok = r == 1;
    if (r == 1)
        snprintf(h[0].why, sizeof(h[0].why), "answers at %s", where);
    else if (r < 0 && err[0])
        snprintf(h[0].why, sizeof(h[0].why), "%s", err);
    else
        snprintf(h[0].why, sizeof(h[0].why), "does not answer at %s", where);
    h[1].part = "scheduler";
    h[1].ok = cluster_scheduler_ping(cfg, 3000);
    snprintf(h[1].why, sizeof(h[1].why), "%s at %s",
             h[1].ok ? "answers" : cluster_pid(cfg, "scheduler") ? "does not answer (it runs)" : "does not answer",
             cfg->control_endpoint);
    h[2].part = "broker";
    int workers = cluster_broker_workers(cfg);
    h[2].ok = workers >= 0;
    snprintf(h[2].why, sizeof(h[2].why), "%s at %s",
             h[2].ok ? "answers" : cluster_pid(cfg, "broker") ? "does not answer (it runs)" : "does not answer",
             cfg->jobs_endpoint);
    h[3].part = "workers";
    h[3].ok = workers > 0;
    if (workers > 0)
        snprintf(h[3].why, sizeof(h[3].why), "%d registered with the broker", workers);
    else if (workers == 0)
        snprintf(h[3].why, sizeof(h[3].why), "none registered with the broker");
    else
        snprintf(h[3].why, sizeof(h[3].why), "unknown: the broker does not answer");
}

int cmd_health(const cli_ctx *c)
{
    health_line h[4];
    memset(h, 0, sizeof(h));
    health_check(c->cfg, h);
    int ok = 1;
    strbuf out;
    sb_init(&out);
    sb_puts(&out, cli_flag(c, "--json") ? "{\"parts\":[" : "");
    for (int i = 0; i < 4; i++) {
        ok &= h[i].ok;
        if (cli_flag(c, "--json")) {
            sb_printf(&out, "%s{\"part\":\"%s\",\"ok\":%s,\"reason\":", i ? "," : "", h[i].part,
                      h[i].ok ? "true" : "false");
            sb_json_str(&out, h[i].why, strlen(h[i].why));
            sb_puts(&out, "}");
        } else {
            sb_printf(&out, "%-10s %-7s %s\n", h[i].part, h[i].ok ? "ok" : "FAILED", h[i].why);
        }
    }
    if (cli_flag(c, "--json"))
        sb_printf(&out, "],\"healthy\":%s}\n", ok ? "true" : "false");
    fputs(sb_str(&out), stdout);
    sb_free(&out);
    return ok ? PS_EXIT_OK : PS_EXIT_FAILED;
}

/* ---- status ---- */

/* Seconds process pid has run (/proc), or -1. */
static long long proc_uptime(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long long start = 0;
    for (int field = 2; p && field < 22; field++)
        p = strchr(p + 1, ' ');
    if (p == NULL || sscanf(p + 1, "%llu", &start) != 1)
        return -1;
    double up = 0;
    f = fopen("/proc/uptime", "r");
    if (f == NULL)
        return -1;
    int got = fscanf(f, "%lf", &up);
    fclose(f);
    long tck = sysconf(_SC_CLK_TCK);
    if (got != 1 || tck <= 0)
        return -1;
    return (long long)(up - (double)start / (double)tck);
}

/* The last n lines of DATA/logs/NAME.log, each appended to out as a JSON
 * string (json) or an indented line. */
static void log_tail(const ps_config *cfg, const char *name, int n, int json, strbuf *out)
{
    char path[CONFIG_STR + 128];
    snprintf(path, sizeof(path), "%s/logs/%s.log", cfg->data_dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || n <= 0) {
        if (fd >= 0)
            close(fd);
        return;
    }
    char buf[16384];
    off_t end = lseek(fd, 0, SEEK_END);
    off_t from = end > (off_t)sizeof(buf) - 1 ? end - (off_t)sizeof(buf) + 1 : 0;
    ssize_t got = pread(fd, buf, sizeof(buf) - 1, from);
    close(fd);
    if (got <= 0)
        return;
    buf[got] = '\0';
    size_t len = (size_t)got;
    while (len > 0 && buf[len - 1] == '\n')
        buf[--len] = '\0';
    size_t start = len;
    for (int k = 0; k < n && start > 0; k++) {
        start--;
        while (start > 0 && buf[start - 1] != '\n')
            start--;
    }
    int first = 1;
    for (char *save = NULL, *ln = strtok_r(buf + start, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
        if (json) {
            sb_puts(out, first ? "" : ",");
            sb_json_str(out, ln, strlen(ln));
        } else {
            sb_printf(out, "      %s\n", ln);
        }
        first = 0;
    }
}

static const char *proc_endpoint(const ps_config *cfg, const char *name, char *buf, size_t n)
{
    if (strcmp(name, "scheduler") == 0)
        return cfg->control_endpoint;
    if (strcmp(name, "broker") == 0) {
        snprintf(buf, n, "%s %s", cfg->jobs_endpoint, cfg->workers_endpoint);
        return buf;
    }
    if (strcmp(name, "redis") == 0)
        return status_where_url(cfg->redis_url, buf, n);
    return "";
}

static void status_procs(const ps_config *cfg, int lines, int json, strbuf *out)
{
    cluster_proc p[CLUSTER_MAX_PROCS];
    int n = cluster_procs(cfg, p, CLUSTER_MAX_PROCS);
    sb_puts(out, json ? "\"processes\":[" : "");
    for (int i = 0; i < n; i++) {
        char ep[CONFIG_STR * 2 + 8];
        const char *endpoint = proc_endpoint(cfg, p[i].name, ep, sizeof(ep));
        long long up = p[i].alive ? proc_uptime(p[i].pid) : -1;
        if (json) {
            sb_printf(out, "%s{\"name\":\"%s\",\"pid\":%d,\"running\":%s,\"uptime_s\":", i ? "," : "", p[i].name,
                      p[i].pid, p[i].alive ? "true" : "false");
            sb_printf(out, up >= 0 ? "%lld" : "null", up);
            sb_puts(out, ",\"endpoint\":");
            sb_json_str(out, endpoint, strlen(endpoint));
            sb_puts(out, ",\"log\":[");
            log_tail(cfg, p[i].name, lines, 1, out);
            sb_puts(out, "]}");
        } else {
            sb_printf(out, "%s %s %s", p[i].alive ? "●" : "○", p[i].name, p[i].alive ? "running" : "not running");
            if (p[i].alive)
                sb_printf(out, " (pid %d, up %llds)", p[i].pid, up);
            sb_printf(out, "%s%s\n", endpoint[0] ? "  " : "", endpoint);
            log_tail(cfg, p[i].name, lines, 0, out);
        }
    }
    sb_puts(out, json ? "]" : "");
}

/* Redis's part of status: reachable, and the workers it lists. */
static void status_redis(const ps_config *cfg, int json, strbuf *out)
{
    char err[ERRLEN], where[300];
    status *st = status_for(cfg, err, sizeof(err));
    redisReply *r = st ? status_workers(st) : NULL;
    status_where_url(cfg->redis_url, where, sizeof(where));
    if (json) {
        sb_printf(out, ",\"redis\":{\"where\":\"%s\",\"up\":%s},\"workers\":{", where, r ? "true" : "false");
    } else {
        sb_printf(out, "Redis: %s at %s\n", r ? "reachable" : "NOT reachable", where);
        if (r)
            sb_printf(out, "%-16s %s\n", "WORKER", "STATE");
    }
    for (size_t i = 0; r && i + 1 < r->elements; i += 2) {
        if (json) {
            sb_puts(out, i ? "," : "");
            sb_json_str(out, r->element[i]->str, r->element[i]->len);
            sb_puts(out, ":");
            sb_json_str(out, r->element[i + 1]->str, r->element[i + 1]->len);
        } else {
            sb_printf(out, "%-16s %s\n", r->element[i]->str, r->element[i + 1]->str);
        }
    }
    sb_puts(out, json ? "}" : "");
    if (r)
        freeReplyObject(r);
    status_destroy(&st);
}

static long long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

int cmd_status(const cli_ctx *c)
{
    const ps_config *cfg = c->cfg;
    char err[ERRLEN];
    if (cluster_check(cfg, 0, err, sizeof(err)) < 0) {
        fprintf(stderr, "patronctl status: %s\n", err);
        return PS_EXIT_FAILED;
    }
    int json = cli_flag(c, "--json");
    int lines = (int)cli_number(c, "--lines", 3);
    strbuf out;
    sb_init(&out);
    sb_puts(&out, json ? "{" : "");
    status_procs(cfg, lines, json, &out);
    status_redis(cfg, json, &out);
    char wal[CONFIG_STR + 8];
    snprintf(wal, sizeof(wal), "%s-wal", cfg->store_path);
    long long size = file_size(cfg->store_path), wsize = file_size(wal);
    if (json) {
        sb_puts(&out, ",\"store\":{\"path\":");
        sb_json_str(&out, cfg->store_path, strlen(cfg->store_path));
        sb_printf(&out, ",\"bytes\":%lld,\"wal_bytes\":%lld}}\n", size, wsize > 0 ? wsize : 0);
    } else if (size < 0) {
        sb_printf(&out, "Store: %s (not there yet)\n", cfg->store_path);
    } else {
        sb_printf(&out, "Store: %s, %lld bytes (+%lld in its WAL)\n", cfg->store_path, size, wsize > 0 ? wsize : 0);
    }
    fputs(sb_str(&out), stdout);
    sb_free(&out);
    return PS_EXIT_OK;
}
