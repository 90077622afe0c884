/* cluster: `patronctl up` and `down` — the processes of a single-host
 * install, their pid files and logs under the data folder, readiness by
 * asking each one. */
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "status.h"
#include "wire.h"

/* Whether port (0: any) can be bound on loopback now; the port bound. */
static int try_port(int want)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)want);
    socklen_t len = sizeof(a);
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* A free loopback port, from below the kernel's ephemeral range: a port
 * the kernel hands to outgoing connections (to Redis, say) can be taken
 * between this choice and the bind; these are not. The caller still
 * starts again on "Address already in use" (cluster_up). */
static int free_port(void)
{
    int lo = 32768, hi = 60999;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f != NULL) {
        if (fscanf(f, "%d %d", &lo, &hi) != 2)
            lo = 32768;
        fclose(f);
    }
    int top = lo - 1, bottom = lo - 12000 > 10000 ? lo - 12000 : 10000;
    for (int i = 0; top > bottom && i < 200; i++) {
        int port = try_port(bottom + (int)(random() % (top - bottom)));
        if (port > 0)
            return port;
    }
    return try_port(0);
}

static void run_path(const ps_config *cfg, const char *name, const char *ext, char *out, size_t n)
{
    snprintf(out, n, "%s/run/%s.%s", cfg->data_dir, name, ext);
}

int cluster_pid(const ps_config *cfg, const char *name)
{
    char path[CONFIG_STR + 64];
    run_path(cfg, name, "pid", path, sizeof(path));
    size_t len;
    char *t = file_read_all(path, 64, &len, NULL, 0);
    if (t == NULL)
        return 0;
    int64_t pid = 0;
    char *nl = strchr(t, '\n');
    if (nl)
        *nl = '\0';
    parse_i64(t, 1, INT32_MAX, &pid);
    free(t);
    if (pid > 0 && kill((pid_t)pid, 0) == 0) {
        /* A zombie (exited, not yet reaped by its parent) is not alive. */
        int st;
        if (waitpid((pid_t)pid, &st, WNOHANG) == (pid_t)pid)
            return 0;
        char statp[64];
        snprintf(statp, sizeof(statp), "/proc/%d/stat", (int)pid);
        char *stat = file_read_all(statp, 4096, &len, NULL, 0);
        int zombie = 0;
        if (stat != NULL) {
            const char *paren = strrchr(stat, ')');
            zombie = paren != NULL && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X');
            free(stat);
        }
        return zombie ? 0 : (int)pid;
    }
    return 0;
}

static int self_dir(char *out, size_t n)
{
    ssize_t k = readlink("/proc/self/exe", out, n - 1);
    if (k <= 0)
        return -1;
    out[k] = '\0';
    char *slash = strrchr(out, '/');
    if (slash)
        *slash = '\0';
    return 0;
}

/* Start a program in its own session, output to DATA/logs/NAME.log. */
static pid_t spawn(const ps_config *cfg, const char *name, char *const argv[], char *err, size_t errlen)
{
    char logp[CONFIG_STR + 64];
    snprintf(logp, sizeof(logp), "%s/logs/%s.log", cfg->data_dir, name);
    pid_t pid = fork();
    if (pid < 0) {
        err_set(err, errlen, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        setsid();
        int fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0640);
        int nul = open("/dev/null", O_RDONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        if (nul >= 0)
            dup2(nul, 0);
        execv(argv[0], argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    char path[CONFIG_STR + 64], line[32];
    run_path(cfg, name, "pid", path, sizeof(path));
    int n = snprintf(line, sizeof(line), "%d\n", (int)pid);
    file_write_atomic(path, line, (size_t)n, err, errlen);
    return pid;
}

static void log_tail(const ps_config *cfg, const char *name, char *err, size_t errlen)
{
    char logp[CONFIG_STR + 64];
    snprintf(logp, sizeof(logp), "%s/logs/%s.log", cfg->data_dir, name);
    size_t len;
    char *t = file_read_all(logp, 1 << 24, &len, NULL, 0);
    if (t == NULL)
        return;
    const char *tail = len > 400 ? t + len - 400 : t;
    size_t used = strlen(err);
    if (used < errlen)
        snprintf(err + used, errlen - used, "\n--- end of %s ---\n%s", logp, tail);
    free(t);
}

static int redis_ping(const char *url)
{
    status *s = status_new(url, NULL, 0);
    if (s == NULL)
        return 0;
    redisReply *r = status_cmd(s, "PING");
    int ok = r != NULL;
    if (r)
        freeReplyObject(r);
    status_destroy(&s);
    return ok;
}

/* Ask the broker how many workers it has; -1 when it does not answer. */
static int broker_workers(const ps_config *cfg)
{
    void *ctx = zmq_ctx_new();
    void *sock = wire_socket(ctx, ZMQ_DEALER, 1 << 20, NULL, 0);
    int workers = -1;
    if (sock && wire_connect(sock, cfg->jobs_endpoint, NULL, 0) == 0) {
        Patronsync__Ping ping = PATRONSYNC__PING__INIT;
        Patronsync__BrokerRequest rq = PATRONSYNC__BROKER_REQUEST__INIT;
        rq.body_case = PATRONSYNC__BROKER_REQUEST__BODY_PING;
        rq.ping = &ping;
        for (int tries = 0; tries < 20 && workers < 0; tries++) {
            if (wire_send(sock, NULL, &rq.base, NULL, 0) < 0) {
                usleep(50 * 1000);
                continue;
            }
            zmq_msg_t body;
            if (wire_recv_wait(sock, NULL, &body, 500) == 1) {
                Patronsync__BrokerReply *r =
                    patronsync__broker_reply__unpack(NULL, zmq_msg_size(&body), zmq_msg_data(&body));
                if (r && r->body_case == PATRONSYNC__BROKER_REPLY__BODY_PONG)
                    workers = (int)r->pong->workers;
                if (r)
                    patronsync__broker_reply__free_unpacked(r, NULL);
                zmq_msg_close(&body);
            }
            break;
        }
    }
    if (sock)
        zmq_close(sock);
    zmq_ctx_term(ctx);
    return workers;
}

static int scheduler_ping(const ps_config *cfg)
{
    Patronsync__ControlRequest rq = PATRONSYNC__CONTROL_REQUEST__INIT;
    rq.verb = "ping";
    Patronsync__ControlReply *r = control_call(cfg, &rq, 500, NULL, 0);
    int ok = r != NULL && r->ok;
    if (r)
        patronsync__control_reply__free_unpacked(r, NULL);
    return ok;
}

/* Wait for cond to hold, watching that the named process stays alive. */
#define WAIT_FOR(cond, name, what)                                                              \
    do {                                                                                        \
        int64_t until_ = mono_ms() + 60000;                                                     \
        while (!(cond)) {                                                                       \
            if (cluster_pid(cfg, name) == 0) {                                                  \
                err_set(err, errlen, "%s exited while starting", name);                         \
                log_tail(cfg, name, err, errlen);                                               \
                return -1;                                                                      \
            }                                                                                   \
            if (mono_ms() > until_) {                                                           \
                err_set(err, errlen, "%s did not become ready within 60 s (%s)", name, what);   \
                log_tail(cfg, name, err, errlen);                                               \
                return -1;                                                                      \
            }                                                                                   \
            usleep(50 * 1000);                                                                  \
        }                                                                                       \
    } while (0)

static int up_once(ps_config *cfg, int workers, int redis_configured, char *err, size_t errlen)
{
    char dir[CONFIG_STR + 32];
    static const char *subdirs[] = {"", "/import", "/import/adhoc", "/logs", "/run", "/redis", "/stage", "/work", "/archive"};
    for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
        snprintf(dir, sizeof(dir), "%s%s", cfg->data_dir, subdirs[i]);
        if (mkdir_p(dir, 0750, err, errlen) < 0)
            return -1;
    }
    if (cluster_pid(cfg, "scheduler") || cluster_pid(cfg, "broker")) {
        err_set(err, errlen, "a cluster is already running under %s (patronctl down --data %s first)", cfg->data_dir,
                cfg->data_dir);
        return -1;
    }
    char absdata[PATH_MAX];
    if (realpath(cfg->data_dir, absdata) == NULL) {
        err_set(err, errlen, "%s: %s", cfg->data_dir, strerror(errno));
        return -1;
    }
    /* Fresh loopback ports for this start, written where every process
     * (and patronctl) reads its configuration. */
    int rport = free_port(), cport = free_port(), jport = free_port(), wport = free_port();
    if (rport < 0 || cport < 0 || jport < 0 || wport < 0) {
        err_set(err, errlen, "no free loopback port");
        return -1;
    }
    strbuf conf;
    sb_init(&conf);
    sb_puts(&conf, "# written by patronctl up: where this cluster's parts listen\n");
    if (!redis_configured)
        sb_printf(&conf, "redis_url=redis://127.0.0.1:%d\n", rport);
    sb_printf(&conf, "control_endpoint=tcp://127.0.0.1:%d\njobs_endpoint=tcp://127.0.0.1:%d\nworkers_endpoint=tcp://127.0.0.1:%d\n",
              cport, jport, wport);
    char path[CONFIG_STR + 64];
    run_path(cfg, "cluster", "conf", path, sizeof(path));
    int rc = file_write_atomic(path, conf.buf, conf.len, err, errlen);
    sb_free(&conf);
    if (rc < 0 || config_load_file(cfg, path, err, errlen) < 0)
        return -1;

    char bindir[PATH_MAX];
    if (self_dir(bindir, sizeof(bindir)) < 0) {
        err_set(err, errlen, "cannot find patronctl's own folder");
        return -1;
    }
    if (!redis_configured) {
        char portarg[16], rdir[PATH_MAX + 16], rlog[PATH_MAX + 32];
        snprintf(portarg, sizeof(portarg), "%d", rport);
        snprintf(rdir, sizeof(rdir), "%s/redis", absdata);
        snprintf(rlog, sizeof(rlog), "%s/logs/redis-server.log", absdata);
        char *argv[] = {"/usr/bin/redis-server", "--port", portarg, "--bind", "127.0.0.1", "--dir", rdir,
                        "--appendonly", "yes", "--save", "", "--daemonize", "no", "--logfile", rlog, NULL};
        if (access(argv[0], X_OK) != 0)
            argv[0] = "/usr/local/bin/redis-server";
        if (spawn(cfg, "redis", argv, err, errlen) < 0)
            return -1;
        WAIT_FOR(redis_ping(cfg->redis_url), "redis", "PING");
    }
    char exe[PATH_MAX + 32], datarg[PATH_MAX];
    str_copy(datarg, sizeof(datarg), absdata);
    snprintf(exe, sizeof(exe), "%s/patron-broker", bindir);
    char *bargv[] = {exe, "--data", datarg, NULL};
    if (spawn(cfg, "broker", bargv, err, errlen) < 0)
        return -1;
    WAIT_FOR(broker_workers(cfg) >= 0, "broker", "Ping");
    for (int i = 1; i <= workers; i++) {
        char name[32], set[64], wexe[PATH_MAX + 32];
        snprintf(name, sizeof(name), "worker-%d", i);
        snprintf(set, sizeof(set), "worker_id=%s", name);
        snprintf(wexe, sizeof(wexe), "%s/patron-worker", bindir);
        char *wargv[] = {wexe, "--data", datarg, "--set", set, NULL};
        if (spawn(cfg, name, wargv, err, errlen) < 0)
            return -1;
    }
    char sexe[PATH_MAX + 32];
    snprintf(sexe, sizeof(sexe), "%s/patron-scheduler", bindir);
    char *sargv[] = {sexe, "--data", datarg, NULL};
    if (spawn(cfg, "scheduler", sargv, err, errlen) < 0)
        return -1;
    WAIT_FOR(scheduler_ping(cfg), "scheduler", "ping");
    WAIT_FOR(broker_workers(cfg) >= workers, "broker", "workers registered");
    char wn[32];
    snprintf(wn, sizeof(wn), "%d", workers);
    run_path(cfg, "workers", "count", path, sizeof(path));
    file_write_atomic(path, wn, strlen(wn), NULL, 0);
    return 0;
}

int cluster_up(ps_config *cfg, int workers, int redis_configured, char *err, size_t errlen)
{
    srandom((unsigned)(getpid() ^ mono_ms()));
    for (int attempt = 1;; attempt++) {
        if (up_once(cfg, workers, redis_configured, err, errlen) == 0)
            return 0;
        /* A port taken between its choice and its bind: start again on
         * other ports (what did start is stopped first). */
        if (attempt == 5 || strstr(err, "Address already in use") == NULL)
            return -1;
        char derr[ERRLEN];
        cluster_down(cfg, derr, sizeof(derr));
        fprintf(stderr, "patronctl up: a port was taken while starting; starting again on other ports\n");
    }
}

static int stop_one(const ps_config *cfg, const char *name, int64_t grace_ms)
{
    int pid = cluster_pid(cfg, name);
    if (pid > 0) {
        kill(pid, SIGTERM);
        int64_t until = mono_ms() + grace_ms;
        while (cluster_pid(cfg, name) && mono_ms() < until)
            usleep(50 * 1000);
        if (cluster_pid(cfg, name)) {
            kill(pid, SIGKILL);
            int64_t hard = mono_ms() + 5000;
            while (cluster_pid(cfg, name) && mono_ms() < hard)
                usleep(20 * 1000);
        }
    }
    char path[CONFIG_STR + 64];
    run_path(cfg, name, "pid", path, sizeof(path));
    unlink(path);
    return pid;
}

int cluster_down(ps_config *cfg, char *err, size_t errlen)
{
    int64_t grace = cfg->shutdown_grace_ms + 5000;
    stop_one(cfg, "scheduler", grace);
    /* Workers first finish or hand back what they hold; the broker then
     * has nothing in flight. */
    char path[CONFIG_STR + 64];
    run_path(cfg, "workers", "count", path, sizeof(path));
    size_t len;
    char *t = file_read_all(path, 32, &len, NULL, 0);
    int64_t n = 64;
    if (t) {
        parse_i64(t, 0, 4096, &n);
        free(t);
    }
    int pids[4096];
    for (int i = 1; i <= n; i++) {
        char name[32];
        snprintf(name, sizeof(name), "worker-%d", i);
        pids[i - 1] = cluster_pid(cfg, name);
        if (pids[i - 1] > 0)
            kill(pids[i - 1], SIGTERM);
    }
    for (int i = 1; i <= n; i++) {
        char name[32];
        snprintf(name, sizeof(name), "worker-%d", i);
        stop_one(cfg, name, grace);
    }
    stop_one(cfg, "broker", grace);
    stop_one(cfg, "redis", grace);
    (void)err;
    (void)errlen;
    return 0;
}
