/* cluster: `patronctl up` and `down` — the processes of a single-host
 * install, their pid files and logs under the data folder, readiness by
 * asking each one. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "call.h"
#include "cluster.h"
#include "curve.h"
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

/* The program a process started by up runs, by its pid file's name
 * (NULL: not checked). A pid file outlives its process (a reboot, a
 * kill -9), and its number can be taken by another program since. */
static const char *expected_program(const char *name)
{
    if (strcmp(name, "scheduler") == 0)
        return "patron-scheduler";
    if (strcmp(name, "broker") == 0)
        return "patron-broker";
    if (strncmp(name, "worker-", 7) == 0)
        return "patron-worker";
    return NULL; /* redis: its program's name varies (redis-server, valkey-server ...) */
}

/* Whether pid is alive (not a zombie) and, when its name says which
 * program it must be, runs that program. */
static int pid_alive(int pid, const char *name)
{
    if (pid <= 0)
        return 0;
    /* EPERM: alive, another user's (a cluster started by root, say). */
    if (kill((pid_t)pid, 0) < 0 && errno != EPERM)
        return 0;
    /* A zombie (exited, not yet reaped by its parent) is not alive. */
    int st;
    if (waitpid((pid_t)pid, &st, WNOHANG) == (pid_t)pid)
        return 0;
    char path[64];
    size_t len;
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    char *stat = file_read_all(path, 4096, &len, NULL, 0);
    if (stat != NULL) {
        const char *paren = strrchr(stat, ')');
        int zombie = paren != NULL && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X');
        free(stat);
        if (zombie)
            return 0;
    }
    const char *prog = expected_program(name);
    if (prog == NULL)
        return 1;
    snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
    char *cmd = file_read_all(path, 4096, &len, NULL, 0);
    if (cmd == NULL)
        return 1; /* no /proc to ask: take the pid's word */
    int ok = len == 0 || strstr(cmd, prog) != NULL; /* argv[0] (NUL-terminated first) */
    free(cmd);
    return ok;
}

/* The pid a pid file holds, or 0. */
static int pid_file(const ps_config *cfg, const char *name)
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
    if (parse_i64(t, 1, INT32_MAX, &pid) < 0)
        pid = 0;
    free(t);
    return (int)pid;
}

int cluster_pid(const ps_config *cfg, const char *name)
{
    int pid = pid_file(cfg, name);
    return pid_alive(pid, name) ? pid : 0;
}

/* Order in lists: redis, broker, workers by number, scheduler, others. */
static int proc_rank(const char *name, long *num)
{
    *num = 0;
    if (strcmp(name, "redis") == 0)
        return 0;
    if (strcmp(name, "broker") == 0)
        return 1;
    if (strncmp(name, "worker-", 7) == 0) {
        *num = strtol(name + 7, NULL, 10);
        return 2;
    }
    if (strcmp(name, "scheduler") == 0)
        return 3;
    return 4;
}

static int proc_cmp(const void *a, const void *b)
{
    const cluster_proc *x = a, *y = b;
    long nx, ny;
    int rx = proc_rank(x->name, &nx), ry = proc_rank(y->name, &ny);
    if (rx != ry)
        return rx < ry ? -1 : 1;
    if (nx != ny)
        return nx < ny ? -1 : 1;
    return strcmp(x->name, y->name);
}

int cluster_procs(const ps_config *cfg, cluster_proc *procs, int cap)
{
    char dir[CONFIG_STR + 16];
    snprintf(dir, sizeof(dir), "%s/run", cfg->data_dir);
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    int n = 0;
    struct dirent *e;
    while (n < cap && (e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len <= 4 || len - 4 >= sizeof(procs[n].name) || strcmp(e->d_name + len - 4, ".pid") != 0)
            continue;
        memcpy(procs[n].name, e->d_name, len - 4);
        procs[n].name[len - 4] = '\0';
        procs[n].pid = pid_file(cfg, procs[n].name);
        procs[n].alive = pid_alive(procs[n].pid, procs[n].name);
        n++;
    }
    closedir(d);
    qsort(procs, (size_t)n, sizeof(procs[0]), proc_cmp);
    return n;
}

/* "broker (pid 12), worker-1 (pid 13)" of the procs alive (or not). */
static void procs_list(const cluster_proc *p, int n, int alive, char *out, size_t outlen)
{
    strbuf sb;
    sb_init(&sb);
    int listed = 0, more = 0;
    for (int i = 0; i < n; i++) {
        if (p[i].alive != alive)
            continue;
        if (listed == 8) {
            more++;
            continue;
        }
        if (alive)
            sb_printf(&sb, "%s%s (pid %d)", listed ? ", " : "", p[i].name, p[i].pid);
        else
            sb_printf(&sb, "%s%s", listed ? ", " : "", p[i].name);
        listed++;
    }
    if (more)
        sb_printf(&sb, " and %d more", more);
    str_copy(out, outlen, listed ? sb_str(&sb) : "nothing");
    sb_free(&sb);
}

static int run_file_exists(const ps_config *cfg, const char *leaf)
{
    char path[CONFIG_STR + 64];
    snprintf(path, sizeof(path), "%s/run/%s", cfg->data_dir, leaf);
    return access(path, F_OK) == 0;
}

/* Whether the operator pointed patronctl at a cluster that up did not
 * start (a container's, say): a scheduler advertised under DIR, or an
 * endpoint set by hand (environment, DATA/patronsync.conf, --set). */
static int configured_elsewhere(const ps_config *cfg, int needs)
{
    if (run_file_exists(cfg, "control.endpoint"))
        return 1;
    ps_config d;
    config_defaults(&d);
    if ((needs & CLI_SCHEDULER) &&
        (getenv("PATRONSYNC_CONTROL_ENDPOINT") != NULL || strcmp(cfg->control_endpoint, d.control_endpoint) != 0))
        return 1;
    if ((needs & CLI_REDIS) && (getenv("PATRONSYNC_REDIS_URL") != NULL || strcmp(cfg->redis_url, d.redis_url) != 0))
        return 1;
    return 0;
}

int cluster_check(const ps_config *cfg, int needs, char *err, size_t errlen)
{
    cluster_proc p[CLUSTER_MAX_PROCS];
    int n = cluster_procs(cfg, p, CLUSTER_MAX_PROCS);
    const char *dir = cfg->data_dir;
    if (n == 0 && !run_file_exists(cfg, "cluster.conf")) {
        if (!(needs & CLI_CLUSTER_DIR) && configured_elsewhere(cfg, needs))
            return 0;
        err_set(err, errlen, "no cluster under %s (start one with 'patronctl --data %s up', or pass --data)", dir, dir);
        return -1;
    }
    if (needs & CLI_CLUSTER_DIR)
        return 0;
    const char *missing = NULL;
    int alive = 0, sched = 0, redis = -1;
    for (int i = 0; i < n; i++) {
        alive += p[i].alive;
        if (strcmp(p[i].name, "scheduler") == 0)
            sched = p[i].alive;
        if (strcmp(p[i].name, "redis") == 0)
            redis = p[i].alive;
    }
    /* Redis is the cluster's own when up wrote its address (else it is
     * the operator's, not ours to judge). */
    if (redis < 0) {
        char path[CONFIG_STR + 64];
        run_path(cfg, "cluster", "conf", path, sizeof(path));
        size_t len;
        char *conf = file_read_all(path, 1 << 16, &len, NULL, 0);
        if (conf != NULL && strstr(conf, "\nredis_url=") != NULL)
            redis = 0;
        free(conf);
    }
    if ((needs & CLI_SCHEDULER) && !sched)
        missing = "scheduler";
    else if ((needs & CLI_REDIS) && redis == 0)
        missing = "Redis";
    if (missing == NULL && alive > 0)
        return 0;
    if (alive == 0) {
        err_set(err, errlen, "the cluster under %s is down (none of its processes is running; "
                "'patronctl --data %s up' starts it)", dir, dir);
        return -1;
    }
    char running[512];
    procs_list(p, n, 1, running, sizeof(running));
    err_set(err, errlen, "the cluster under %s is down: its %s is not running (running: %s). "
            "'patronctl --data %s down', then 'patronctl --data %s up', starts it again",
            dir, missing, running, dir, dir);
    return -1;
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

/* What one `up` started: only these are stopped when it fails. */
typedef struct {
    cluster_proc p[CLUSTER_MAX_PROCS];
    int n;
} started_set;

/* Start a program in its own session, output to DATA/logs/NAME.log; its
 * pid in DATA/run/NAME.pid and in started. */
static pid_t spawn(const ps_config *cfg, const char *name, char *const argv[], started_set *started, char *err,
                   size_t errlen)
{
    if (started->n == CLUSTER_MAX_PROCS) {
        err_set(err, errlen, "more than %d processes to start", CLUSTER_MAX_PROCS);
        return -1;
    }
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
    cluster_proc *sp = &started->p[started->n++];
    str_copy(sp->name, sizeof(sp->name), name);
    sp->pid = (int)pid;
    sp->alive = 1;
    char path[CONFIG_STR + 64], line[32];
    run_path(cfg, name, "pid", path, sizeof(path));
    int n = snprintf(line, sizeof(line), "%d\n", (int)pid);
    if (file_write_atomic(path, line, (size_t)n, err, errlen) < 0)
        return -1;
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

/* 1 when the cluster's Redis answers a PING as cfg's user, -1 when it
 * refuses cfg's password (err says so), 0 not yet. */
static int redis_ping(const ps_config *cfg, char *err, size_t errlen)
{
    status *s = status_for(cfg, err, errlen);
    if (s == NULL)
        return -1;
    int ok = status_ping(s);
    if (!ok && status_check(s, err, errlen) < 0)
        ok = -1;
    status_destroy(&s);
    return ok;
}

/* Ask the broker how many workers it has; -1 when it does not answer. */
static int broker_workers(const ps_config *cfg)
{
    void *ctx = zmq_ctx_new();
    void *sock = wire_socket(ctx, ZMQ_DEALER, 1 << 20, NULL, 0);
    int workers = -1;
    if (sock && curve_connect_as(sock, cfg, "client", "broker", NULL, 0) == 0 &&
        wire_connect(sock, cfg->jobs_endpoint, NULL, 0) == 0) {
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

static int scheduler_ping(const ps_config *cfg, long timeout_ms)
{
    Patronsync__ControlRequest rq = PATRONSYNC__CONTROL_REQUEST__INIT;
    rq.verb = "ping";
    Patronsync__ControlReply *r = control_call(cfg, &rq, timeout_ms, NULL, 0);
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

/* The ACL user of the cluster's own Redis, and the only commands it may
 * run (every command lib/status.c sends; no CONFIG, FLUSHALL, DEBUG, KEYS):
 * a command added to lib/status.c goes here too. */
#define REDIS_USER "patronsync"
static const char *const redis_commands[] = {
    "auth", "ping",  "select", "hset",   "hsetnx", "hget",      "hgetall", "del",  "rename",
    "rpush", "lpush", "ltrim",  "lrange", "zadd",   "zrevrange", "zrem",    "scan", "multi", "exec",
    "publish", "subscribe",
};

/* Write text to path readable by its owner only (0600 from its creation:
 * the umask, not a chmod after). once: keep a file that is there. 1
 * written, 0 kept, -1 with err. */
static int write_owner_only(const char *path, const char *text, int once, char *err, size_t errlen)
{
    mode_t old = umask(077);
    int rc = once ? file_write_once(path, text, strlen(text), err, errlen)
                  : file_write_atomic(path, text, strlen(text), err, errlen);
    umask(old);
    if (rc < 0)
        return -1;
    if (chmod(path, 0600) < 0) {
        err_set(err, errlen, "cannot chmod %s: %s", path, strerror(errno));
        return -1;
    }
    return once ? rc == 0 : 1;
}

#define REDIS_PW_MAX 256 /* lib/status.c's limit, its NUL included */

/* The private Redis's password: KEYS/redis.password, made once (random,
 * hex) and kept (an operator may put one of their own there: 16 to 255
 * bytes, no white space); it into pw, the file's path into path. 0 / -1
 * with err. */
static int redis_password(const ps_config *cfg, char *path, size_t pathlen, char pw[REDIS_PW_MAX], char *err,
                          size_t errlen)
{
    char keys[PATH_MAX];
    if (mkdir_p(cfg->keys_dir, 0700, err, errlen) < 0)
        return -1;
    if (realpath(cfg->keys_dir, keys) == NULL) {
        err_set(err, errlen, "%s: %s", cfg->keys_dir, strerror(errno));
        return -1;
    }
    snprintf(path, pathlen, "%s/redis.password", keys);
    unsigned char bin[32];
    char text[66];
    randombytes_buf(bin, sizeof(bin));
    sodium_bin2hex(text, 65, bin, sizeof(bin));
    sodium_memzero(bin, sizeof(bin));
    text[64] = '\n';
    text[65] = '\0';
    int rc = write_owner_only(path, text, 1, err, errlen);
    sodium_memzero(text, sizeof(text));
    if (rc < 0)
        return -1;
    char *t = file_read_all(path, 1024, NULL, err, errlen);
    if (t == NULL)
        return -1;
    t[strcspn(t, "\r\n")] = '\0';
    size_t n = strlen(t);
    int ok = n >= 16 && n < REDIS_PW_MAX;
    for (size_t i = 0; ok && i < n; i++)
        ok = (unsigned char)t[i] > ' ' && t[i] != 0x7f;
    if (ok)
        memcpy(pw, t, n + 1);
    sodium_memzero(t, strlen(t));
    free(t);
    if (!ok) {
        err_set(err, errlen, "%s does not hold a usable password (16 to 255 bytes on its first line, no white "
                "space); remove it and 'patronctl up' makes a new one", path);
        return -1;
    }
    return 0;
}

/* A path for redis.conf, quoted; 0 / -1 when it cannot be (a quote,
 * backslash or control character in it). */
static int redis_quoted(strbuf *sb, const char *name, const char *path)
{
    for (const char *p = path; *p; p++)
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
            return -1;
    sb_printf(sb, "%s \"%s\"\n", name, path);
    return 0;
}

/* DATA/run/redis.conf (mode 0600), the file the private redis-server
 * reads: loopback only, no default user, the ACL user with the password's
 * SHA-256 (the file never holds the password itself). 0 / -1 with err. */
static int write_redis_conf(const ps_config *cfg, const char *absdata, int rport, const char *pw, char *err,
                            size_t errlen)
{
    unsigned char hash[crypto_hash_sha256_BYTES];
    char hex[2 * crypto_hash_sha256_BYTES + 1];
    crypto_hash_sha256(hash, (const unsigned char *)pw, strlen(pw));
    sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));
    char rdir[PATH_MAX + 16], rlog[PATH_MAX + 32];
    snprintf(rdir, sizeof(rdir), "%s/redis", absdata);
    snprintf(rlog, sizeof(rlog), "%s/logs/redis-server.log", absdata);
    strbuf sb;
    sb_init(&sb);
    sb_puts(&sb, "# written by patronctl up at each start (docs/SECURITY.md): the cluster's own Redis\n");
    sb_printf(&sb, "port %d\nbind 127.0.0.1\nprotected-mode yes\ndaemonize no\nappendonly yes\nsave \"\"\n", rport);
    int rc = redis_quoted(&sb, "dir", rdir) < 0 || redis_quoted(&sb, "logfile", rlog) < 0 ? -1 : 0;
    sb_puts(&sb, "user default off resetpass nocommands\n");
    sb_printf(&sb, "user %s on #%s resetkeys ~ps:* &* -@all", REDIS_USER, hex);
    for (size_t i = 0; i < sizeof(redis_commands) / sizeof(redis_commands[0]); i++)
        sb_printf(&sb, " +%s", redis_commands[i]);
    sb_puts(&sb, "\n");
    char path[CONFIG_STR + 64];
    run_path(cfg, "redis", "conf", path, sizeof(path));
    if (rc < 0)
        err_set(err, errlen, "the data folder %s has a character redis.conf cannot hold (a quote, a backslash)",
                absdata);
    else
        rc = write_owner_only(path, sb_str(&sb), 0, err, errlen) < 0 ? -1 : 0;
    sb_free(&sb);
    return rc;
}

/* Fresh loopback ports for this start, written where every process (and
 * patronctl) reads its configuration, and loaded into cfg; Redis's port
 * into *rport. With a Redis of its own (pwpath: its password file; NULL
 * when redis_url is the operator's), its user and password file too.
 * 0 / -1 with err. */
static int write_ports(ps_config *cfg, const char *pwpath, int *rport, char *err, size_t errlen)
{
    *rport = free_port();
    int cport = free_port(), jport = free_port(), wport = free_port();
    if (*rport < 0 || cport < 0 || jport < 0 || wport < 0) {
        err_set(err, errlen, "no free loopback port");
        return -1;
    }
    strbuf conf;
    sb_init(&conf);
    sb_puts(&conf, "# written by patronctl up: where this cluster's parts listen\n");
    if (pwpath != NULL)
        sb_printf(&conf, "redis_url=redis://%s@127.0.0.1:%d\nredis_password_file=%s\n", REDIS_USER, *rport, pwpath);
    sb_printf(&conf, "control_endpoint=tcp://127.0.0.1:%d\njobs_endpoint=tcp://127.0.0.1:%d\nworkers_endpoint=tcp://127.0.0.1:%d\n",
              cport, jport, wport);
    char path[CONFIG_STR + 64];
    run_path(cfg, "cluster", "conf", path, sizeof(path));
    int rc = file_write_atomic(path, conf.buf, conf.len, err, errlen);
    sb_free(&conf);
    if (rc < 0 || config_load_file(cfg, path, err, errlen) < 0)
        return -1;
    return 0;
}

/* A redis-server of the cluster's own on rport, answering PING. 0 / -1. */
static int start_redis(ps_config *cfg, const char *absdata, int rport, const char *pw, started_set *started,
                       char *err, size_t errlen)
{
    /* Its settings in a file it reads, never its argument list (which
     * anyone on the host may read in /proc): the password's hash is there. */
    char conf[CONFIG_STR + 64];
    if (write_redis_conf(cfg, absdata, rport, pw, err, errlen) < 0)
        return -1;
    run_path(cfg, "redis", "conf", conf, sizeof(conf));
    char *argv[] = {"/usr/bin/redis-server", conf, NULL};
    if (access(argv[0], X_OK) != 0)
        argv[0] = "/usr/local/bin/redis-server";
    if (spawn(cfg, "redis", argv, started, err, errlen) < 0)
        return -1;
    int ping = 0;
    WAIT_FOR((ping = redis_ping(cfg, err, errlen)) != 0, "redis", "PING");
    return ping < 0 ? -1 : 0;
}

/* The broker, N workers and the scheduler from bindir, each waited for. 0 / -1. */
static int start_programs(ps_config *cfg, const char *bindir, const char *absdata, int workers, started_set *started,
                          char *err, size_t errlen)
{
    char exe[PATH_MAX + 32], datarg[PATH_MAX];
    str_copy(datarg, sizeof(datarg), absdata);
    snprintf(exe, sizeof(exe), "%s/patron-broker", bindir);
    char *bargv[] = {exe, "--data", datarg, NULL};
    if (spawn(cfg, "broker", bargv, started, err, errlen) < 0)
        return -1;
    WAIT_FOR(broker_workers(cfg) >= 0, "broker", "Ping");
    for (int i = 1; i <= workers; i++) {
        char name[32], set[64], wexe[PATH_MAX + 32];
        snprintf(name, sizeof(name), "worker-%d", i);
        snprintf(set, sizeof(set), "worker_id=%s", name);
        snprintf(wexe, sizeof(wexe), "%s/patron-worker", bindir);
        char *wargv[] = {wexe, "--data", datarg, "--set", set, NULL};
        if (spawn(cfg, name, wargv, started, err, errlen) < 0)
            return -1;
    }
    char sexe[PATH_MAX + 32];
    snprintf(sexe, sizeof(sexe), "%s/patron-scheduler", bindir);
    char *sargv[] = {sexe, "--data", datarg, NULL};
    if (spawn(cfg, "scheduler", sargv, started, err, errlen) < 0)
        return -1;
    WAIT_FOR(scheduler_ping(cfg, 500), "scheduler", "ping");
    WAIT_FOR(broker_workers(cfg) >= workers, "broker", "workers registered");
    return 0;
}

static int up_once(ps_config *cfg, int workers, int redis_configured, started_set *started, char *err, size_t errlen)
{
    char absdata[PATH_MAX];
    if (realpath(cfg->data_dir, absdata) == NULL) {
        err_set(err, errlen, "%s: %s", cfg->data_dir, strerror(errno));
        return -1;
    }
    char bindir[PATH_MAX];
    if (self_dir(bindir, sizeof(bindir)) < 0) {
        err_set(err, errlen, "cannot find patronctl's own folder");
        return -1;
    }
    /* The cluster's own Redis (not the operator's): its password. */
    char pwpath[PATH_MAX + 32], pw[REDIS_PW_MAX] = "";
    if (!redis_configured && redis_password(cfg, pwpath, sizeof(pwpath), pw, err, errlen) < 0)
        return -1;
    int rport;
    if (write_ports(cfg, redis_configured ? NULL : pwpath, &rport, err, errlen) < 0) {
        sodium_memzero(pw, sizeof(pw));
        return -1;
    }
    int rc = redis_configured ? 0 : start_redis(cfg, absdata, rport, pw, started, err, errlen);
    sodium_memzero(pw, sizeof(pw));
    if (rc < 0)
        return -1;
    if (start_programs(cfg, bindir, absdata, workers, started, err, errlen) < 0)
        return -1;
    char wn[32], path[CONFIG_STR + 64];
    snprintf(wn, sizeof(wn), "%d", workers);
    run_path(cfg, "workers", "count", path, sizeof(path));
    file_write_atomic(path, wn, strlen(wn), NULL, 0);
    return 0;
}

/* Wait until pid is gone (reaped when it is our child). 1 when gone. */
static int wait_pid_gone(int pid, int64_t ms)
{
    int64_t until = mono_ms() + ms;
    for (;;) {
        int st;
        if (waitpid((pid_t)pid, &st, WNOHANG) == (pid_t)pid || kill((pid_t)pid, 0) < 0)
            return 1;
        if (mono_ms() > until)
            return 0;
        usleep(20 * 1000);
    }
}

/* Remove DATA/run/NAME.pid if it still names pid. */
static void pid_file_remove(const ps_config *cfg, const char *name, int pid)
{
    if (pid_file(cfg, name) != pid)
        return;
    char path[CONFIG_STR + 64];
    run_path(cfg, name, "pid", path, sizeof(path));
    unlink(path);
}

/* Stop what this `up` started (its last first), nothing else. */
static void stop_started(const ps_config *cfg, started_set *started)
{
    int64_t grace = cfg->shutdown_grace_ms + 5000;
    for (int i = started->n - 1; i >= 0; i--)
        kill((pid_t)started->p[i].pid, SIGTERM);
    for (int i = started->n - 1; i >= 0; i--) {
        cluster_proc *p = &started->p[i];
        if (!wait_pid_gone(p->pid, grace)) {
            kill((pid_t)p->pid, SIGKILL);
            wait_pid_gone(p->pid, 5000);
        }
        pid_file_remove(cfg, p->name, p->pid);
    }
    started->n = 0;
}

/* What runs under DIR before an `up`: 0 nothing (start it), 1 a whole
 * cluster whose scheduler answers (msg says so), -1 part of one, or one
 * that does not answer (msg says what runs and what does not). */
static int running_already(ps_config *cfg, int workers, char *msg, size_t msglen)
{
    cluster_proc p[CLUSTER_MAX_PROCS];
    int n = cluster_procs(cfg, p, CLUSTER_MAX_PROCS);
    int alive = 0, nworkers = 0, sched = 0, broker = 0;
    for (int i = 0; i < n; i++) {
        alive += p[i].alive;
        if (!p[i].alive)
            continue;
        nworkers += strncmp(p[i].name, "worker-", 7) == 0;
        sched |= strcmp(p[i].name, "scheduler") == 0;
        broker |= strcmp(p[i].name, "broker") == 0;
    }
    if (alive == 0)
        return 0;
    const char *dir = cfg->data_dir;
    char running[512], stopped[512];
    procs_list(p, n, 1, running, sizeof(running));
    procs_list(p, n, 0, stopped, sizeof(stopped));
    if (alive < n || !sched || !broker || nworkers == 0) {
        /* What a whole cluster has and no pid file names is not running either. */
        strbuf notrun;
        sb_init(&notrun);
        if (alive < n)
            sb_puts(&notrun, stopped);
        static const char *const parts[] = {"broker", "workers", "scheduler"};
        const int have[] = {broker, nworkers > 0, sched};
        for (size_t k = 0; k < 3; k++)
            if (!have[k])
                sb_printf(&notrun, "%s%s", sb_str(&notrun)[0] ? ", " : "", parts[k]);
        err_set(msg, msglen,
                "the cluster under %s is half-running: running: %s; not running: %s. Nothing was started or "
                "stopped: 'patronctl --data %s down' stops what runs, then 'patronctl --data %s up' starts it whole",
                dir, running, sb_str(&notrun), dir, dir);
        sb_free(&notrun);
        return -1;
    }
    if (!scheduler_ping(cfg, 3000)) {
        err_set(msg, msglen,
                "a cluster runs under %s (%s) but its scheduler does not answer at %s. Nothing was started or "
                "stopped: see %s/logs/scheduler.log; 'patronctl --data %s down' stops it",
                dir, running, cfg->control_endpoint, dir, dir);
        return -1;
    }
    char note[CONFIG_STR + 256] = "", where[300];
    if (workers > 0 && workers != nworkers)
        snprintf(note, sizeof(note), " It has %d worker%s: --workers %d takes effect after 'patronctl --data %s down'.",
                 nworkers, nworkers == 1 ? "" : "s", workers, dir);
    err_set(msg, msglen,
            "a cluster is already running under %s: %s; scheduler at %s, Redis at %s. Nothing was changed.%s", dir,
            running, cfg->control_endpoint, status_where_url(cfg->redis_url, where, sizeof(where)), note);
    return 1;
}

int cluster_up(ps_config *cfg, int workers, int redis_configured, char *err, size_t errlen)
{
    char dir[CONFIG_STR + 32];
    static const char *subdirs[] = {"", "/import", "/import/adhoc", "/logs", "/run", "/redis", "/stage", "/work", "/archive"};
    for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
        snprintf(dir, sizeof(dir), "%s%s", cfg->data_dir, subdirs[i]);
        if (mkdir_p(dir, 0750, err, errlen) < 0)
            return -1;
    }
    /* One `up` at a time under DIR: a second one waits for nothing and
     * starts nothing. Not inherited by what it starts (O_CLOEXEC). */
    char lockp[CONFIG_STR + 64];
    run_path(cfg, "up", "lock", lockp, sizeof(lockp));
    int lock = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (lock < 0) {
        err_set(err, errlen, "cannot open %s: %s", lockp, strerror(errno));
        return -1;
    }
    if (flock(lock, LOCK_EX | LOCK_NB) < 0) {
        err_set(err, errlen, "another 'patronctl up' is starting the cluster under %s now; nothing was done",
                cfg->data_dir);
        close(lock);
        return -1;
    }
    int rc = running_already(cfg, workers, err, errlen);
    if (rc != 0) {
        close(lock);
        return rc;
    }
    if (workers <= 0)
        workers = CLUSTER_DEFAULT_WORKERS;
    /* The endpoints' CURVE keys and allow-lists, made once (docs/SECURITY.md). */
    if (cfg->curve && curve_keygen(cfg, err, errlen) < 0) {
        close(lock);
        return -1;
    }
    srandom((unsigned)(getpid() ^ mono_ms()));
    started_set *started = calloc(1, sizeof(*started));
    if (started == NULL) {
        err_set(err, errlen, "out of memory");
        close(lock);
        return -1;
    }
    for (int attempt = 1;; attempt++) {
        if (up_once(cfg, workers, redis_configured, started, err, errlen) == 0) {
            rc = 0;
            break;
        }
        /* Whatever failed, only what this `up` started is stopped. */
        stop_started(cfg, started);
        /* A port taken between its choice and its bind: start again on
         * other ports. */
        if (attempt == 5 || strstr(err, "Address already in use") == NULL) {
            rc = -1;
            break;
        }
        fprintf(stderr, "patronctl up: a port was taken while starting; starting again on other ports\n");
    }
    free(started);
    close(lock);
    return rc;
}

/* Stop the process of a pid file: SIGTERM, then SIGKILL after grace_ms. */
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

int cluster_down(ps_config *cfg, int *stopped, char *err, size_t errlen)
{
    int64_t grace = cfg->shutdown_grace_ms + 5000;
    cluster_proc p[CLUSTER_MAX_PROCS];
    int n = cluster_procs(cfg, p, CLUSTER_MAX_PROCS);
    *stopped = 0;
    for (int i = 0; i < n; i++)
        *stopped += p[i].alive;
    /* The scheduler first: no new job. Then the workers, all told at once
     * to finish or hand back what they hold; the broker then has nothing
     * in flight; Redis last. Whatever else a pid file names, after them. */
    stop_one(cfg, "scheduler", grace);
    for (int i = 0; i < n; i++)
        if (strncmp(p[i].name, "worker-", 7) == 0 && p[i].alive)
            kill(p[i].pid, SIGTERM);
    for (int i = 0; i < n; i++)
        if (strncmp(p[i].name, "worker-", 7) == 0)
            stop_one(cfg, p[i].name, grace);
    stop_one(cfg, "broker", grace);
    stop_one(cfg, "redis", grace);
    for (int i = 0; i < n; i++)
        stop_one(cfg, p[i].name, grace);
    (void)err;
    (void)errlen;
    return 0;
}

/* ---- the commands ---- */

int cmd_up(const cli_ctx *c)
{
    ps_config *cfg = c->cfg;
    int workers = (int)cli_number(c, "--workers", 0); /* not given: a running cluster's count is fine */
    char userconf[CONFIG_STR + 32];
    snprintf(userconf, sizeof(userconf), "%s/patronsync.conf", cfg->data_dir);
    int redis_configured = getenv("PATRONSYNC_REDIS_URL") != NULL;
    size_t len;
    char *uc = file_read_all(userconf, 1 << 20, &len, NULL, 0);
    if (uc) {
        redis_configured |= strstr(uc, "redis_url") != NULL;
        free(uc);
    }
    char err[2 * ERRLEN];
    int rc = cluster_up(cfg, workers, redis_configured, err, sizeof(err));
    if (rc == 1) {
        printf("%s\n", err);
        return PS_EXIT_OK;
    }
    if (rc < 0) {
        fprintf(stderr, "patronctl up: %s\n", err);
        return PS_EXIT_FAILED;
    }
    char where[300];
    printf("cluster up under %s: %d workers, scheduler at %s, Redis at %s\n", cfg->data_dir,
           workers > 0 ? workers : CLUSTER_DEFAULT_WORKERS, cfg->control_endpoint,
           status_where_url(cfg->redis_url, where, sizeof(where)));
    printf("administrator token: %s/admin.token\n", cfg->data_dir);
    return PS_EXIT_OK;
}

int cmd_down(const cli_ctx *c)
{
    char err[ERRLEN];
    int stopped = 0;
    if (cluster_down(c->cfg, &stopped, err, sizeof(err)) < 0) {
        fprintf(stderr, "patronctl down: %s\n", err);
        return PS_EXIT_FAILED;
    }
    if (stopped == 0)
        printf("the cluster under %s was not running; nothing to stop\n", c->cfg->data_dir);
    else
        printf("cluster under %s stopped\n", c->cfg->data_dir);
    return PS_EXIT_OK;
}

int cluster_redis_ping(const ps_config *cfg, char *err, size_t errlen)
{
    return redis_ping(cfg, err, errlen);
}

int cluster_broker_workers(const ps_config *cfg)
{
    return broker_workers(cfg);
}

int cluster_scheduler_ping(const ps_config *cfg, long timeout_ms)
{
    return scheduler_ping(cfg, timeout_ms);
}
