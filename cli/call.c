/* call: one request to the scheduler's control endpoint, with the
 * user's token. */
#include "call.h"
#include "curve.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wire.h"

/* What --token and --token-file gave (control_token_args). */
static char *given_token;
static const char *given_token_file;

int control_token_args(int *argc, char **argv, char *err, size_t errlen)
{
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        char *a = argv[i], *v = NULL;
        int is_file = strcmp(a, "--token-file") == 0, is_token = strcmp(a, "--token") == 0;
        if (strncmp(a, "--token=", 8) == 0) {
            v = a + 8;
        } else if (is_file || is_token) {
            if (i + 1 >= *argc) {
                err_set(err, errlen, "%s needs a value", a);
                return -1;
            }
            v = argv[++i];
        } else {
            argv[out++] = a;
            continue;
        }
        if (is_file) {
            given_token_file = v;
            continue;
        }
        free(given_token);
        given_token = strdup(v);
        memset(v, 'x', strlen(v)); /* gone from /proc/PID/cmdline */
    }
    argv[out] = NULL;
    *argc = out;
    return 0;
}

/* A token file: readable by its owner alone. */
static char *token_file(const char *path, char *err, size_t errlen)
{
    struct stat sb;
    char e[ERRLEN];
    if (stat(path, &sb) == 0 && (sb.st_mode & 077) != 0) {
        err_set(err, errlen, "token file %s may be read by others (mode %03o): chmod 600 it", path,
                (unsigned)(sb.st_mode & 0777));
        return NULL;
    }
    char *t = file_read_all(path, 256, NULL, e, sizeof(e));
    if (t == NULL)
        err_set(err, errlen, "%s", e);
    return t;
}

char *control_token(const ps_config *cfg, char *err, size_t errlen)
{
    if (given_token != NULL)
        return strdup(given_token);
    char *t;
    if (given_token_file != NULL) {
        t = token_file(given_token_file, err, errlen);
        if (t != NULL)
            t[strcspn(t, "\r\n")] = '\0';
        return t;
    }
    const char *env = getenv("PATRONSYNC_TOKEN");
    if (env && *env)
        return strdup(env);
    char path[CONFIG_STR + 32];
    snprintf(path, sizeof(path), "%s/admin.token", cfg->data_dir);
    size_t len;
    char e[ERRLEN];
    t = file_read_all(path, 256, &len, e, sizeof(e));
    if (t == NULL) {
        err_set(err, errlen, "PATRONSYNC_TOKEN is not set and %s", e);
        return NULL;
    }
    char *nl = strchr(t, '\n');
    if (nl)
        *nl = '\0';
    return t;
}

Patronsync__ControlReply *control_call(const ps_config *cfg, Patronsync__ControlRequest *rq, long timeout_ms,
                                       char *err, size_t errlen)
{
    void *ctx = zmq_ctx_new();
    void *sock = wire_socket(ctx, ZMQ_DEALER, (int64_t)1 << 30, err, errlen);
    Patronsync__ControlReply *rep = NULL;
    char ep[CONFIG_STR];
    if (sock == NULL || config_endpoint(cfg, "control", cfg->control_endpoint, ep, sizeof(ep), err, errlen) < 0 ||
        curve_connect_as(sock, cfg, "client", "scheduler", err, errlen) < 0 || wire_connect(sock, ep, err, errlen) < 0)
        goto out;
    /* IMMEDIATE: the send fails until connected; retry until the deadline.
     * A live scheduler is connected to at once: a connection is waited
     * for 5 s at most, whatever the answer may take. */
    int64_t until = mono_ms() + timeout_ms;
    int64_t connect_until = mono_ms() + (timeout_ms < 5000 ? timeout_ms : 5000);
    while (wire_send(sock, NULL, &rq->base, err, errlen) < 0) {
        if (mono_ms() > connect_until) {
            err_set(err, errlen, "the scheduler at %s does not answer (is the cluster under %s up? "
                    "'patronctl --data %s up' starts it)", ep, cfg->data_dir, cfg->data_dir);
            goto out;
        }
        usleep(20 * 1000);
    }
    zmq_msg_t body;
    long left = (long)(until - mono_ms());
    int r = wire_recv_wait(sock, NULL, &body, left > 0 ? left : 1);
    if (r != 1) {
        err_set(err, errlen, "no answer from the scheduler at %s within %ld ms", ep, timeout_ms);
        goto out;
    }
    rep = patronsync__control_reply__unpack(NULL, zmq_msg_size(&body), zmq_msg_data(&body));
    zmq_msg_close(&body);
    if (rep == NULL)
        err_set(err, errlen, "the scheduler's answer does not decode");
out:
    if (sock)
        zmq_close(sock);
    zmq_ctx_term(ctx);
    return rep;
}

int cli_call(const cli_ctx *c, Patronsync__ControlRequest *rq, long timeout_ms, char **body)
{
    char err[ERRLEN], words[96];
    cli_verb_words(c->verb, words, sizeof(words));
    char *token = control_token(c->cfg, err, sizeof(err));
    if (token == NULL) {
        fprintf(stderr, "%s: refused: no user token: %s\n", words, err);
        return PS_EXIT_REFUSED;
    }
    rq->token.data = (uint8_t *)token;
    rq->token.len = strlen(token);
    Patronsync__ControlReply *rep = control_call(c->cfg, rq, timeout_ms, err, sizeof(err));
    rq->token.data = NULL;
    rq->token.len = 0;
    sodium_memzero(token, strlen(token));
    free(token);
    if (rep == NULL) {
        fprintf(stderr, "%s: %s\n", words, err);
        return PS_EXIT_FAILED;
    }
    int rc = rep->ok ? (int)rep->status : (rep->status ? (int)rep->status : PS_EXIT_FAILED);
    if (!rep->ok)
        fprintf(stderr, "patronctl: %s\n", rep->error);
    else if (body)
        *body = strdup(rep->body);
    else
        fputs(rep->body, stdout);
    patronsync__control_reply__free_unpacked(rep, NULL);
    return rc;
}
