/* call: one request to the scheduler's control endpoint, with the
 * user's token. */
#include "call.h"
#include "curve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wire.h"

char *control_token(const ps_config *cfg, char *err, size_t errlen)
{
    const char *env = getenv("PATRONSYNC_TOKEN");
    if (env && *env)
        return strdup(env);
    char path[CONFIG_STR + 32];
    snprintf(path, sizeof(path), "%s/admin.token", cfg->data_dir);
    size_t len;
    char e[ERRLEN];
    char *t = file_read_all(path, 256, &len, e, sizeof(e));
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
    rq->token = token;
    Patronsync__ControlReply *rep = control_call(c->cfg, rq, timeout_ms, err, sizeof(err));
    rq->token = "";
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
