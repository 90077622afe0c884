/* curve: keys and socket options (curve.h). */
#include "curve.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>
#include <zmq.h>

#include "util.h"

/* The value of "name=<z85>" in text, into out. 0 / -1. */
static int key_line(const char *text, const char *name, char out[CURVE_Z85])
{
    size_t n = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, name, n) == 0 && p[n] == '=') {
            const char *v = p + n + 1;
            size_t len = strcspn(v, "\r\n");
            if (len != CURVE_Z85 - 1)
                return -1;
            memcpy(out, v, len);
            out[len] = '\0';
            uint8_t bin[32];
            return zmq_z85_decode(bin, out) != NULL ? 0 : -1;
        }
    }
    return -1;
}

int curve_read_key(const char *path, curve_keypair *kp, int secret, char *err, size_t errlen)
{
    char e[ERRLEN];
    char *t = file_read_all(path, 4096, NULL, e, sizeof(e));
    if (t == NULL) {
        err_set(err, errlen, "no CURVE key %s (%s): 'patronctl keygen --data DIR' makes the keys", path,
                errno == ENOENT ? "not there" : e);
        return -1;
    }
    int rc = key_line(t, "public", kp->pub);
    if (rc == 0 && secret)
        rc = key_line(t, "secret", kp->sec);
    sodium_memzero(t, strlen(t));
    free(t);
    if (rc < 0)
        err_set(err, errlen, "CURVE key %s is not a patronsync key file", path);
    return rc;
}

int curve_load(const ps_config *cfg, const char *role, curve_keypair *kp, char *err, size_t errlen)
{
    char path[CONFIG_STR + 64];
    snprintf(path, sizeof(path), "%s/%.16s.key", cfg->keys_dir, role);
    return curve_read_key(path, kp, 1, err, errlen);
}

int curve_load_public(const ps_config *cfg, const char *role, char pub[CURVE_Z85], char *err, size_t errlen)
{
    char path[CONFIG_STR + 64];
    snprintf(path, sizeof(path), "%s/%.16s.pub", cfg->keys_dir, role);
    curve_keypair kp;
    if (curve_read_key(path, &kp, 0, err, errlen) < 0)
        return -1;
    memcpy(pub, kp.pub, CURVE_Z85);
    return 0;
}

/* Write text to path unless it exists, readable by its owner only. 1
 * written, 0 there already, -1. */
static int write_private(const char *path, const char *text, char *err, size_t errlen)
{
    int rc = file_write_once(path, text, strlen(text), err, errlen);
    if (rc == 0 && chmod(path, 0600) < 0) {
        err_set(err, errlen, "cannot chmod %s: %s", path, strerror(errno));
        return -1;
    }
    return rc < 0 ? -1 : rc == 0;
}

int curve_keygen_role(const char *dir, const char *role, curve_keypair *kp, char *err, size_t errlen)
{
    if (mkdir_p(dir, 0700, err, errlen) < 0)
        return -1;
    char path[CONFIG_STR + 64], text[512];
    snprintf(path, sizeof(path), "%s/%.16s.key", dir, role);
    int made = 0;
    if (access(path, F_OK) != 0) {
        if (zmq_curve_keypair(kp->pub, kp->sec) != 0) {
            err_set(err, errlen, "cannot make a CURVE keypair: %s", zmq_strerror(zmq_errno()));
            return -1;
        }
        snprintf(text, sizeof(text),
                 "# patronsync CURVE key of the %s: keep this file private (mode 0600)\npublic=%s\nsecret=%s\n", role,
                 kp->pub, kp->sec);
        made = write_private(path, text, err, errlen);
        sodium_memzero(text, sizeof(text));
        if (made < 0)
            return -1;
    }
    if (curve_read_key(path, kp, 1, err, errlen) < 0)
        return -1;
    snprintf(path, sizeof(path), "%s/%.16s.pub", dir, role);
    snprintf(text, sizeof(text), "# patronsync CURVE public key of the %s\npublic=%s\n", role, kp->pub);
    if (file_write_atomic(path, text, strlen(text), err, errlen) < 0)
        return -1;
    return made;
}

int curve_keygen(const ps_config *cfg, char *err, size_t errlen)
{
    static const char *const roles[] = {"broker", "scheduler", "worker", "client"};
    curve_keypair kp[4];
    const char *dir = cfg->keys_dir;
    for (size_t i = 0; i < 4; i++)
        if (curve_keygen_role(dir, roles[i], &kp[i], err, errlen) < 0)
            return -1;
    /* Who each endpoint admits, and by what name. */
    static const struct {
        const char *domain;
        int roles[2];
    } allow[] = {{"jobs", {1, 3}}, {"workers", {2, -1}}, {"control", {3, -1}}};
    for (size_t i = 0; i < sizeof(allow) / sizeof(allow[0]); i++) {
        char path[CONFIG_STR + 64], text[1024];
        int n = snprintf(text, sizeof(text),
                         "# patronsync: the CURVE public keys the %s endpoint admits, one '<key> <name>' a line\n",
                         allow[i].domain);
        for (int k = 0; k < 2 && allow[i].roles[k] >= 0; k++)
            n += snprintf(text + n, sizeof(text) - (size_t)n, "%s %s\n", kp[allow[i].roles[k]].pub,
                          roles[allow[i].roles[k]]);
        snprintf(path, sizeof(path), "%s/%.16s.allow", dir, allow[i].domain);
        if (file_write_once(path, text, strlen(text), err, errlen) < 0)
            return -1;
    }
    for (size_t i = 0; i < 4; i++)
        sodium_memzero(kp[i].sec, sizeof(kp[i].sec));
    return 0;
}

int curve_serve(void *sock, const ps_config *cfg, const char *role, const char *domain, char *err, size_t errlen)
{
    if (!cfg->curve)
        return 0;
    curve_keypair kp;
    if (curve_load(cfg, role, &kp, err, errlen) < 0)
        return -1;
    int one = 1;
    int rc = zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof(one));
    if (rc == 0)
        rc = zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, kp.sec, CURVE_Z85 - 1);
    if (rc == 0)
        rc = zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, domain, strlen(domain));
    sodium_memzero(kp.sec, sizeof(kp.sec));
    if (rc != 0)
        err_set(err, errlen, "cannot make the %s endpoint a CURVE server: %s", domain, zmq_strerror(zmq_errno()));
    return rc == 0 ? 0 : -1;
}

int curve_connect_as(void *sock, const ps_config *cfg, const char *role, const char *server_role, char *err,
                     size_t errlen)
{
    if (!cfg->curve)
        return 0;
    curve_keypair kp;
    char server[CURVE_Z85];
    if (curve_load(cfg, role, &kp, err, errlen) < 0 || curve_load_public(cfg, server_role, server, err, errlen) < 0)
        return -1;
    int rc = curve_client(sock, server, &kp, err, errlen);
    sodium_memzero(kp.sec, sizeof(kp.sec));
    return rc;
}

int curve_client(void *sock, const char *server_pub, const curve_keypair *kp, char *err, size_t errlen)
{
    int rc = zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server_pub, CURVE_Z85 - 1);
    if (rc == 0)
        rc = zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, kp->pub, CURVE_Z85 - 1);
    if (rc == 0)
        rc = zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, kp->sec, CURVE_Z85 - 1);
    if (rc != 0)
        err_set(err, errlen, "cannot set CURVE client keys: %s", zmq_strerror(zmq_errno()));
    return rc == 0 ? 0 : -1;
}

const char *curve_user(void *msg)
{
    const char *u = zmq_msg_gets((zmq_msg_t *)msg, "User-Id");
    return u ? u : "";
}
