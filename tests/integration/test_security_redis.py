"""test_security_redis: the cluster's own Redis locked down (issue 18).
Without credentials Redis answers nothing; the ACL user patronctl up makes
runs what patronsync needs and not CONFIG or FLUSHALL; a wrong password
stops a daemon at its start with a clear message; the password is in no
log, file, argument list or Redis; keygen makes keys once; and a summary
forged in Redis is shown as a mismatch with the store, never trusted."""
import json
import os
import signal
import socket
import subprocess
import time

from harness import BIN, Cluster, cluster_restart, cluster_signal, district, main, test, wait_gone, workdir

_files = {}


def files():
    if not _files:
        day1, prof, sites = district(workdir("security-redis-files"), 2000, 43, "p.properties")
        _files.update(day1=day1, prof=prof, sites=sites)
    return _files


def redis_port(c):
    for line in open(os.path.join(c.data, "run", "redis.conf")):
        if line.startswith("port "):
            return int(line.split()[1])
    raise AssertionError("no port in redis.conf")


def password(c):
    return open(os.path.join(c.data, "keys", "redis.password")).read().strip()


class Resp:
    """A Redis connection over a plain socket: the password goes over the
    socket, never on an argument list (redis-cli -a would put it there)."""

    def __init__(self, port):
        self.sk = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.f = self.sk.makefile("rb")

    def __call__(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sk.sendall(b"".join(out))
        return self.reply()

    def reply(self):
        line = self.f.readline()
        kind, body = line[:1], line[1:-2].decode("utf-8", "replace")
        if kind == b"-":
            return ("error", body)
        if kind in (b"+", b":"):
            return body
        if kind == b"$":
            n = int(body)
            return None if n < 0 else self.f.read(n + 2)[:-2].decode("utf-8", "replace")
        if kind == b"*":
            return [self.reply() for _ in range(int(body))]
        raise AssertionError(f"unexpected reply {line!r}")

    def close(self):
        self.sk.close()


def as_patronsync(c):
    r = Resp(redis_port(c))
    assert r("AUTH", "patronsync", password(c)) == "OK"
    return r


def refused(reply):
    return isinstance(reply, tuple) and reply[0] == "error"


@test
def redis_without_credentials_answers_nothing():
    with Cluster("sec-redis-noauth", workers=1) as c:
        port = redis_port(c)
        p = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True, timeout=30)
        assert "PONG" not in p.stdout, p.stdout
        assert "NOAUTH" in p.stdout + p.stderr, p.stdout + p.stderr
        # The default user is off: neither its empty password nor any other gets in.
        r = Resp(port)
        assert refused(r("AUTH", "default", "")), "the default user took an empty password"
        assert refused(r("HGETALL", "ps:workers"))
        assert refused(r("CONFIG", "SET", "requirepass", "x"))
        r.close()
        for f in ("run/redis.conf", "keys/redis.password"):
            mode = os.stat(os.path.join(c.data, f)).st_mode & 0o777
            assert mode == 0o600, f"{f} is mode {oct(mode)}"


@test
def the_acl_user_runs_what_patronsync_needs_only():
    with Cluster("sec-redis-acl", workers=1) as c:
        conf = open(os.path.join(c.data, "run", "cluster.conf")).read()
        assert f"redis_url=redis://patronsync@127.0.0.1:{redis_port(c)}\n" in conf, conf
        assert "redis_password_file=" in conf and "redis.password" in conf
        r = as_patronsync(c)
        assert r("PING") == "PONG"
        for cmd in (["CONFIG", "GET", "*"], ["FLUSHALL"], ["DEBUG", "SLEEP", "0"], ["KEYS", "*"],
                    ["CONFIG", "SET", "requirepass", "locked-out"], ["ACL", "LIST"], ["SHUTDOWN"]):
            got = r(*cmd)
            # DEBUG: Redis 7 refuses it before the ACL does (enable-debug-command no).
            assert refused(got) and ("NOPERM" in got[1] or cmd[0] == "DEBUG"), f"{cmd}: {got}"
        # Its keys only: ps:*.
        assert refused(r("SET", "other:key", "x")) and refused(r("HSET", "other:key", "a", "b"))
        assert r("HGETALL", "ps:workers")
        r.close()
        # The cluster still works end to end (CONFIG SET above changed nothing).
        c.sites(files()["sites"])
        s = c.run(files()["day1"], files()["prof"])
        assert s["state"] in ("complete", "complete_with_errors"), s["state"]
        assert s["counts"]["added"] > 0 and s["verified"] is True, s
        lst = json.loads(c.ctl("jobs", "--json").stdout)
        assert lst[0]["job_id"] == s["job_id"] and lst[0]["verified"] is True, lst[0]
        c.ctl("status")


@test
def a_wrong_password_stops_a_daemon_at_its_start():
    with Cluster("sec-redis-wrongpw", workers=1) as c:
        pwfile = os.path.join(c.data, "keys", "redis.password")
        good = password(c)
        wait_gone(cluster_signal(c, "scheduler", signal.SIGTERM))
        wait_gone(cluster_signal(c, "broker", signal.SIGTERM))
        wrong = "0123456789abcdef" * 4
        with open(pwfile, "w") as f:
            f.write(wrong + "\n")
        for exe in ("patron-broker", "patron-scheduler", "patron-worker"):
            p = subprocess.run([os.path.join(BIN, exe), "--data", c.data], capture_output=True, text=True,
                               timeout=60, stdin=subprocess.DEVNULL)
            assert p.returncode == 1, f"{exe} exited {p.returncode}: {p.stderr[-2000:]}"
            assert f"redis 127.0.0.1:{redis_port(c)} refused the password of user 'patronsync'" in p.stderr, p.stderr
            assert wrong not in p.stderr and good not in p.stderr
        p = c.ctl("jobs", check=False)
        assert p.returncode != 0 and wrong not in p.stdout + p.stderr
        with open(pwfile, "w") as f:
            f.write(good + "\n")
        cluster_restart(c, "broker")
        cluster_restart(c, "scheduler")
        c.ctl("status")


def cmdlines():
    out = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                out[int(pid)] = open(f"/proc/{pid}/cmdline", "rb").read()
            except OSError:
                pass
    return out


@test
def the_password_is_in_no_log_file_argument_list_or_redis():
    with Cluster("sec-redis-secret", workers=2) as c:
        pw = password(c)
        assert len(pw) == 64 and int(pw, 16) >= 0
        c.sites(files()["sites"])
        c.run(files()["day1"], files()["prof"])
        # A restarted Redis (the chaos tests' way) reads the same file.
        wait_gone(cluster_signal(c, "redis", signal.SIGTERM))
        cluster_restart(c, "redis")
        r = None
        for _ in range(200):
            try:
                r = as_patronsync(c)
                break
            except (OSError, AssertionError):
                time.sleep(0.05)
        assert r is not None and r("PING") == "PONG"
        r.close()
        pids = {n[:-4]: int(open(os.path.join(c.data, "run", n)).read()) for n in os.listdir(os.path.join(c.data, "run"))
                if n.endswith(".pid")}
        assert {"redis", "broker", "scheduler", "worker-1"} <= set(pids), pids
        lines = cmdlines()
        for name, pid in pids.items():
            assert pid in lines, f"{name} (pid {pid}) is not running"
        for pid, line in lines.items():
            assert pw.encode() not in line, f"the password is in the argument list of pid {pid}"
        # Every file under the data folder but the password's own: logs, run
        # files (redis.conf holds only its SHA-256), keys, the store, and
        # Redis's own persistence (its append-only files: what Redis holds).
        own = os.path.join(c.data, "keys", "redis.password")
        looked, aof = 0, 0
        for top, _, names in os.walk(c.data):
            for n in names:
                path = os.path.join(top, n)
                if path == own or not os.path.isfile(path):
                    continue
                looked += 1
                aof += "appendonly" in path
                assert pw.encode() not in open(path, "rb").read(), f"the password is in {path}"
        assert looked > 20 and aof > 0, (looked, aof)
        out = c.ctl("--print-config").stdout + c.ctl("status").stdout
        assert pw not in out


@test
def keygen_makes_keys_once():
    d = workdir("sec-redis-keygen")
    data = os.path.join(d, "data")
    ctl = os.path.join(BIN, "patronctl")
    p = subprocess.run([ctl, "--data", data, "keygen", "--role", "worker"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    pub = [l for l in open(os.path.join(data, "keys", "worker.pub")) if l.startswith("public=")][0][7:].strip()
    assert f"{pub} worker" in p.stdout.splitlines(), p.stdout
    assert "workers.allow" in p.stdout
    assert os.stat(os.path.join(data, "keys", "worker.key")).st_mode & 0o077 == 0
    again = subprocess.run([ctl, "--data", data, "keygen", "--role", "worker", "--json"], capture_output=True, text=True)
    j = json.loads(again.stdout)
    assert again.returncode == 0 and j["made"] is False and j["public"] == pub and j["allow_line"] == f"{pub} worker"
    p = subprocess.run([ctl, "--data", data, "keygen", "--json"], capture_output=True, text=True)
    j = json.loads(p.stdout)
    assert p.returncode == 0 and "worker.key" in j["kept"] and "broker.key" in j["made"] and "jobs.allow" in j["made"], j
    before = {n: open(os.path.join(data, "keys", n)).read() for n in os.listdir(os.path.join(data, "keys"))}
    p = subprocess.run([ctl, "--data", data, "keygen"], capture_output=True, text=True)
    assert p.returncode == 0 and "nothing to make" in p.stdout, p.stdout
    after = {n: open(os.path.join(data, "keys", n)).read() for n in os.listdir(os.path.join(data, "keys"))}
    assert before == after
    p = subprocess.run([ctl, "--data", data, "keygen", "--role", "intruder"], capture_output=True, text=True)
    assert p.returncode == 2 and "expected broker, scheduler, worker or client" in p.stderr


@test
def a_summary_forged_in_redis_is_a_mismatch():
    with Cluster("sec-redis-forged", workers=1) as c:
        c.sites(files()["sites"])
        real = c.run(files()["day1"], files()["prof"])
        rid = real["job_id"]
        p = c.ctl("job", "show", rid, "--json", check=False)
        assert p.returncode in (0, 3) and json.loads(p.stdout)["verified"] is True
        r = as_patronsync(c)
        # A job the store never applied, written as Redis's patronctl reads it.
        fake = "20990101-000000-forged"
        r("HSET", f"ps:job:{fake}", "state", "complete", "file", "day1.csv", "requested_by", "admin",
          "finished_ms", "1", "dry_run", "0")
        r("HSET", f"ps:job:{fake}:summary", "read", "76", "deleted", "76")
        r("ZADD", "ps:jobs", "4102444800000", fake)
        p = c.ctl("job", "show", fake, "--json", check=False)
        assert p.returncode == 7, f"exit {p.returncode}: {p.stderr}"
        j = json.loads(p.stdout)
        assert j["verified"] is False and "no record" in j["mismatch"], j
        p = c.ctl("job", "show", fake, check=False)
        assert p.returncode == 7 and "MISMATCH" in p.stdout, p.stdout
        # A real job's summary rewritten: its counts differ from the store's.
        r("HSET", f"ps:job:{rid}:summary", "added", "0")
        p = c.ctl("job", "show", rid, "--json", check=False)
        j = json.loads(p.stdout)
        assert p.returncode == 7 and j["verified"] is False and "added" in j["mismatch"], (p.returncode, j)
        # An applied job Redis calls failed.
        r("HSET", f"ps:job:{rid}:summary", "added", str(real["counts"]["added"]))
        r("HSET", f"ps:job:{rid}", "state", "failed")
        p = c.ctl("job", "show", rid, "--json", check=False)
        j = json.loads(p.stdout)
        assert p.returncode == 7 and j["verified"] is False and "applied" in j["mismatch"], (p.returncode, j)
        r("HSET", f"ps:job:{rid}", "state", real["state"])
        r.close()
        p = c.ctl("jobs", "--json", check=False)
        assert p.returncode == 7, p.returncode
        rows = {row["job_id"]: row for row in json.loads(p.stdout)}
        assert rows[fake]["verified"] is False and rows[rid]["verified"] is True, rows
        p = c.ctl("jobs", check=False)
        assert p.returncode == 7 and f"MISMATCH: job {fake}" in p.stdout and "complete (MISMATCH)" in p.stdout


def free_port():
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        return sk.getsockname()[1]


@test
def a_redis_the_operator_configured_is_used_as_given():
    d = workdir("sec-redis-operator")
    port, pw = free_port(), "f00dfeed" * 8
    conf = os.path.join(d, "redis.conf")
    with open(conf, "w") as f:
        f.write(f"port {port}\nbind 127.0.0.1\ndir {d}\nsave \"\"\nuser default off\n"
                f"user ops on >{pw} ~* &* +@all\n")
    redis = subprocess.Popen(["redis-server", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                r = Resp(port)
                break
            except OSError:
                time.sleep(0.05)
        assert r("AUTH", "ops", pw) == "OK"
        r.close()
        pwfile = os.path.join(d, "ops.password")
        with open(pwfile, "w") as f:
            f.write(pw + "\n")
        os.chmod(pwfile, 0o600)
        c = Cluster("sec-redis-operator-cluster", workers=1,
                    settings={"redis_url": f"redis://ops@127.0.0.1:{port}", "redis_password_file": pwfile})
        with c:
            run = os.path.join(c.data, "run")
            assert not os.path.exists(os.path.join(run, "redis.pid")) and not os.path.exists(os.path.join(run, "redis.conf"))
            assert "redis_url" not in open(os.path.join(run, "cluster.conf")).read()
            assert not os.path.exists(os.path.join(c.data, "keys", "redis.password"))
            c.sites(files()["sites"])
            s = c.run(files()["day1"], files()["prof"])
            assert s["state"] in ("complete", "complete_with_errors") and s["verified"] is True, s
        # Their password file with a wrong password: up fails, saying so.
        with open(pwfile, "w") as f:
            f.write("0" * 64 + "\n")
        p = c.ctl("up", "--workers", 1, check=False)
        c.ctl("down", check=False)
        assert p.returncode == 1, p.stdout + p.stderr
        assert f"redis 127.0.0.1:{port} refused the password of user 'ops'" in p.stderr, p.stderr
        assert pw not in p.stdout + p.stderr and "0" * 64 not in p.stdout + p.stderr
    finally:
        redis.terminate()
        redis.wait(timeout=30)


if __name__ == "__main__":
    main()
