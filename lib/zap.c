/* zap: the ZAP handler (zap.h). */
#include "zap.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

#include "curve.h"
#include "log.h"
#include "util.h"

#define ZAP_FRAMES 7 /* version, request id, domain, address, identity, mechanism, credentials */

#define ZAP_WATCHED 4

struct zap {
    void *sock;
    pthread_mutex_t lock; /* hands a monitor socket over to the thread */
    void *mon[ZAP_WATCHED];
    char mon_domain[ZAP_WATCHED][16];
    int nmon;
    pthread_t thread;
    int running;
    atomic_int stop;
    atomic_ulong refused;    /* by ZAP: a key not listed, not CURVE */
    atomic_ulong handshakes; /* failed before ZAP: plaintext, a wrong server key */
    char dir[CONFIG_STR];
};

/* The name listed for key (z85) in dir/<domain>.allow into name; 1 found,
 * 0 not. The file is read at each request: an edit counts at once. */
static int allowed(const char *dir, const char *domain, const char *key, char *name, size_t namelen)
{
    char path[CONFIG_STR + 80];
    if (strspn(domain, "abcdefghijklmnopqrstuvwxyz") != strlen(domain) || domain[0] == '\0')
        return 0;
    snprintf(path, sizeof(path), "%s/%.32s.allow", dir, domain);
    char *t = file_read_all(path, 1 << 20, NULL, NULL, 0);
    if (t == NULL)
        return 0;
    int found = 0;
    for (char *line = t, *next; line != NULL && !found; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        if (line[0] == '#')
            continue;
        size_t kl = strcspn(line, " \t\r");
        if (kl == CURVE_Z85 - 1 && strncmp(line, key, kl) == 0) {
            const char *nm = line + kl + strspn(line + kl, " \t");
            snprintf(name, namelen, "%.*s", (int)strcspn(nm, " \t\r"), nm);
            found = 1;
        }
    }
    free(t);
    return found;
}

/* One frame of a request into buf (NUL-terminated, cut to buflen). 1 when
 * more frames follow. */
static int frame(void *sock, char *buf, size_t buflen, size_t *len)
{
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, sock, 0) < 0) {
        zmq_msg_close(&m);
        *len = 0;
        buf[0] = '\0';
        return 0;
    }
    size_t n = zmq_msg_size(&m);
    *len = n;
    if (n >= buflen)
        n = buflen - 1;
    memcpy(buf, zmq_msg_data(&m), n);
    buf[n] = '\0';
    int more = zmq_msg_more(&m);
    zmq_msg_close(&m);
    return more;
}

static void reply(void *sock, const char *version, const char *reqid, size_t reqid_len, const char *code,
                  const char *text, const char *user)
{
    zmq_send(sock, version, strlen(version), ZMQ_SNDMORE);
    zmq_send(sock, reqid, reqid_len, ZMQ_SNDMORE);
    zmq_send(sock, code, strlen(code), ZMQ_SNDMORE);
    zmq_send(sock, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(sock, user, strlen(user), ZMQ_SNDMORE);
    zmq_send(sock, "", 0, 0);
}

static void handle(zap *z)
{
    char f[ZAP_FRAMES][256];
    size_t len[ZAP_FRAMES] = {0};
    int n = 0, more = 1;
    while (more) {
        char spill[256];
        size_t sl;
        if (n < ZAP_FRAMES) {
            more = frame(z->sock, f[n], sizeof(f[n]), &len[n]);
            n++;
        } else {
            more = frame(z->sock, spill, sizeof(spill), &sl);
        }
    }
    for (int i = n; i < ZAP_FRAMES; i++)
        f[i][0] = '\0';
    const char *domain = f[2], *address = f[3], *mechanism = f[5];
    char name[128] = "";
    const char *why = NULL;
    if (n < ZAP_FRAMES - 1 || strcmp(f[0], "1.0") != 0) {
        why = "a malformed ZAP request";
    } else if (strcmp(mechanism, "CURVE") != 0) {
        why = "not CURVE";
    } else if (len[6] != 32) {
        why = "no client key";
    } else {
        char key[CURVE_Z85];
        zmq_z85_encode(key, (const uint8_t *)f[6], 32);
        if (!allowed(z->dir, domain, key, name, sizeof(name)))
            why = "a key not on its allow-list";
    }
    if (why == NULL) {
        reply(z->sock, "1.0", f[1], len[1], "200", "OK", name);
        return;
    }
    unsigned long k = atomic_fetch_add(&z->refused, 1) + 1;
    if ((k & (k - 1)) == 0)
        log_warn("refused a peer at %s on the %s endpoint: %s (%lu refused so far)", address[0] ? address : "?",
                 domain[0] ? domain : "?", why, k);
    reply(z->sock, "1.0", f[1], len[1], "400", why, "");
}

/* One monitor event of domain's server: a handshake that failed. */
static void on_event(zap *z, void *mon, const char *domain)
{
    char f[2][256];
    size_t len[2];
    int more = frame(mon, f[0], sizeof(f[0]), &len[0]);
    if (more)
        while (frame(mon, f[1], sizeof(f[1]), &len[1]))
            ;
    if (len[0] < 6)
        return;
    uint16_t ev;
    memcpy(&ev, f[0], sizeof(ev));
    if (ev == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
        return; /* handle() logged it, with the peer's address */
    const char *why = "a handshake that is not CURVE with this server's key";
    unsigned long k = atomic_fetch_add(&z->handshakes, 1) + 1;
    if ((k & (k - 1)) == 0)
        log_warn("refused a peer on the %s endpoint: %s (a plaintext or unknown client; %lu refused so far)", domain,
                 why, k);
}

static void *run(void *arg)
{
    zap *z = arg;
    while (!atomic_load(&z->stop)) {
        zmq_pollitem_t it[1 + ZAP_WATCHED] = {{z->sock, 0, ZMQ_POLLIN, 0}};
        pthread_mutex_lock(&z->lock);
        int n = z->nmon;
        for (int i = 0; i < n; i++)
            it[1 + i] = (zmq_pollitem_t){z->mon[i], 0, ZMQ_POLLIN, 0};
        pthread_mutex_unlock(&z->lock);
        if (zmq_poll(it, 1 + n, 200) <= 0)
            continue;
        if (it[0].revents & ZMQ_POLLIN)
            handle(z);
        for (int i = 0; i < n; i++)
            if (it[1 + i].revents & ZMQ_POLLIN)
                on_event(z, z->mon[i], z->mon_domain[i]);
    }
    zmq_close(z->sock);
    for (int i = 0; i < z->nmon; i++)
        zmq_close(z->mon[i]);
    return NULL;
}

int zap_watch(zap *z, void *ctx, void *sock, const char *domain, char *err, size_t errlen)
{
    if (!z->running)
        return 0;
    if (z->nmon == ZAP_WATCHED) {
        err_set(err, errlen, "too many endpoints watched");
        return -1;
    }
    char ep[64];
    snprintf(ep, sizeof(ep), "inproc://patronsync-monitor-%.16s", domain);
    void *pair = NULL;
    if (zmq_socket_monitor(sock, ep, ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                                         ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) != 0 ||
        (pair = zmq_socket(ctx, ZMQ_PAIR)) == NULL || zmq_connect(pair, ep) != 0) {
        err_set(err, errlen, "cannot watch the %s endpoint's handshakes: %s", domain, zmq_strerror(zmq_errno()));
        if (pair)
            zmq_close(pair);
        return -1;
    }
    int linger = 0;
    zmq_setsockopt(pair, ZMQ_LINGER, &linger, sizeof(linger));
    pthread_mutex_lock(&z->lock);
    str_copy(z->mon_domain[z->nmon], sizeof(z->mon_domain[0]), domain);
    z->mon[z->nmon++] = pair; /* the thread's from here on */
    pthread_mutex_unlock(&z->lock);
    return 0;
}

zap *zap_start(void *ctx, const ps_config *cfg, char *err, size_t errlen)
{
    zap *z = calloc(1, sizeof(*z));
    if (z == NULL) {
        err_set(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&z->lock, NULL);
    if (!cfg->curve)
        return z;
    str_copy(z->dir, sizeof(z->dir), cfg->keys_dir);
    z->sock = zmq_socket(ctx, ZMQ_REP);
    int linger = 0;
    if (z->sock == NULL || zmq_setsockopt(z->sock, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
        zmq_bind(z->sock, "inproc://zeromq.zap.01") != 0) {
        err_set(err, errlen, "cannot start the ZAP handler: %s", zmq_strerror(zmq_errno()));
        if (z->sock)
            zmq_close(z->sock);
        free(z);
        return NULL;
    }
    int e = pthread_create(&z->thread, NULL, run, z);
    if (e != 0) {
        err_set(err, errlen, "cannot start the ZAP handler's thread: %s", strerror(e));
        zmq_close(z->sock);
        free(z);
        return NULL;
    }
    z->running = 1;
    return z;
}

void zap_stop(zap **zp)
{
    if (zp == NULL || *zp == NULL)
        return;
    zap *z = *zp;
    if (z->running) {
        atomic_store(&z->stop, 1);
        pthread_join(z->thread, NULL);
    }
    pthread_mutex_destroy(&z->lock);
    free(z);
    *zp = NULL;
}

unsigned long zap_refused(const zap *z)
{
    return z ? atomic_load(&((zap *)z)->refused) + atomic_load(&((zap *)z)->handshakes) : 0;
}
