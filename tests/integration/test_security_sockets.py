"""test_security_sockets: every ZeroMQ endpoint authenticated with CURVE
(issue 18). An attacker on the same host — a plaintext peer, a peer with a
key nobody listed, or patronctl's own client key — can neither submit a
job, approve one, nor register as a worker; results for tasks a peer does
not hold are dropped; the cluster's own parts work end to end."""
import json
import os
import subprocess
import time

from harness import BIN, Cluster, district, main, test, workdir

_files = {}


def files():
    if not _files:
        day1, prof, sites = district(workdir("security-files"), 3000, 41, "p.properties")
        _files.update(day1=day1, prof=prof, sites=sites)
    return _files


def conf(c):
    return dict(l.strip().split("=", 1) for l in open(os.path.join(c.data, "run", "cluster.conf"))
                if "=" in l and not l.startswith("#"))


def rogue(*args, timeout=60):
    p = subprocess.run([os.path.join(BIN, "tools", "zmq_rogue")] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def auths(c):
    keys = os.path.join(c.data, "keys")
    return {"plain": "plain",
            "unknown key": f"unknown:{keys}/broker.pub",
            "patronctl's key": f"key:{keys}/broker.pub:{keys}/client.key"}


def log(c, name):
    return open(os.path.join(c.data, "logs", f"{name}.log"), errors="replace").read()


@test
def keys_are_made_by_up_and_kept_private():
    with Cluster("sec-keys", workers=1) as c:
        keys = os.path.join(c.data, "keys")
        assert oct(os.stat(keys).st_mode & 0o777) == "0o700"
        for role in ("broker", "scheduler", "worker", "client"):
            st = os.stat(os.path.join(keys, f"{role}.key"))
            assert st.st_mode & 0o077 == 0, f"{role}.key is mode {oct(st.st_mode & 0o777)}"
            secret = [l for l in open(os.path.join(keys, f"{role}.key")) if l.startswith("secret=")][0][7:].strip()
            assert len(secret) == 40
            # The secret is in its own file only: not in a log, the run files or the other keys.
            for top, _, names in os.walk(c.data):
                for n in names:
                    path = os.path.join(top, n)
                    if path == os.path.join(keys, f"{role}.key") or n.endswith((".db", ".db-wal", ".db-shm")):
                        continue
                    assert secret not in open(path, errors="replace").read(), f"{role}'s secret key in {path}"
        allow = open(os.path.join(keys, "workers.allow")).read()
        assert open(os.path.join(keys, "worker.pub")).read().split("public=")[1].strip() in allow
        before = {n: open(os.path.join(keys, n)).read() for n in os.listdir(keys)}
        c.ctl("down")
        c.ctl("up", "--workers", 1)
        assert {n: open(os.path.join(keys, n)).read() for n in os.listdir(keys)} == before, "up made new keys"


@test
def no_one_but_the_scheduler_submits_or_approves_a_job():
    f = files()
    with Cluster("sec-jobs", workers=2) as c:
        c.sites(f["sites"])
        ep = conf(c)["jobs_endpoint"]
        for name, auth in auths(c).items():
            jid = "rogue-" + name.split()[0].replace("'", "")
            assert rogue("job", ep, auth, jid) == "no answer", f"a {name} peer's job was answered"
            assert rogue("decision", ep, auth, jid) == "no answer", f"a {name} peer's decision was answered"
            assert not os.path.exists(os.path.join(c.data, "work", jid)), f"a {name} peer's job was taken"
        jobs = json.loads(c.ctl("jobs", "--json").stdout)
        assert not any(j["job_id"].startswith("rogue-") for j in jobs), jobs
        b = log(c, "broker")
        assert "a job from 'client', not the scheduler, refused" in b, b[-2000:]
        assert "refused a peer at" in b and "a key not on its allow-list" in b, b[-2000:]
        assert "refused a peer on the jobs endpoint: a handshake that is not CURVE" in b, b[-2000:]
        # The cluster's own parts still work end to end, over CURVE.
        s = c.run(f["day1"], f["prof"])
        assert s["state"] == "complete" and s["counts"]["added"] == 3000, s["counts"]


@test
def a_rogue_worker_gets_no_task():
    f = files()
    with Cluster("sec-workers", workers=2, settings={"shard_size": "300"}) as c:
        c.sites(f["sites"])
        ep = conf(c)["workers_endpoint"]
        keys = os.path.join(c.data, "keys")
        rogues = [subprocess.Popen([os.path.join(BIN, "tools", "zmq_rogue"), "worker", ep, auth, "6"],
                                   stdout=subprocess.PIPE, text=True)
                  for auth in ("plain", f"unknown:{keys}/broker.pub", f"unknown:{keys}/scheduler.pub")]
        time.sleep(0.5)
        s = c.run(f["day1"], f["prof"])
        for p in rogues:
            out, _ = p.communicate(timeout=60)
            assert out.strip() == "heartbeats 0 tasks 0", out
        assert s["state"] == "complete" and s["counts"]["added"] == 3000, s["counts"]


@test
def results_for_tasks_a_peer_does_not_hold_are_dropped():
    """A listed worker key (a worker that misbehaves) sends ok results for
    every shard and the apply of a running job while another worker holds
    the apply: dropped, the peer with them; the job ends as a clean run."""
    f = files()
    with Cluster("sec-results", workers=2, settings={"shard_size": "500", "test_apply_delay_ms": "700"}) as c:
        c.sites(f["sites"])
        keys = os.path.join(c.data, "keys")
        run = subprocess.Popen([os.path.join(BIN, "patronctl"), "--data", c.data, "run", f["day1"], "--profile",
                                f["prof"], "--copy-in", "--wait", "--json"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        end, jid = time.time() + 60, None
        while time.time() < end and jid is None:
            for j in json.loads(c.ctl("jobs", "--json").stdout):
                s = json.loads(c.ctl("job", "show", j["job_id"], "--json").stdout)
                if s["state"] == "running" and s["phase"] == "apply" and s["shards_done"] == s["shards"] > 0:
                    jid = j["job_id"]
            time.sleep(0.05)
        assert jid, "the job never reached its apply"
        out = rogue("result", conf(c)["workers_endpoint"], f"key:{keys}/broker.pub:{keys}/worker.key", jid,
                    ",".join(str(i) for i in range(6)))
        assert out.endswith("tasks 0"), out
        o, e = run.communicate(timeout=120)
        s = json.loads(o)
        assert s["state"] == "complete" and s["counts"]["added"] == 3000, (s["state"], s["counts"], e)
        assert c.db().execute("SELECT count(*) FROM patrons").fetchone()[0] == 3000
        assert "a task it does not hold: dropped" in log(c, "broker")


@test
def a_connected_workers_identity_cannot_be_taken_over():
    """ROUTER_HANDOVER is off: a second peer presenting the identity of a
    connected one (even with a listed key) gets nothing, and the first
    keeps its connection."""
    with Cluster("sec-handover", workers=1) as c:
        ep = conf(c)["workers_endpoint"]
        keys = os.path.join(c.data, "keys")
        auth = f"key:{keys}/broker.pub:{keys}/worker.key"
        env = dict(os.environ, ROGUE_IDENTITY="worker-1/4242/victim")
        tool = os.path.join(BIN, "tools", "zmq_rogue")
        first = subprocess.Popen([tool, "worker", ep, auth, "6"], env=env, stdout=subprocess.PIPE, text=True)
        time.sleep(1.5)
        second = subprocess.Popen([tool, "worker", ep, auth, "3"], env=env, stdout=subprocess.PIPE, text=True)
        out2, _ = second.communicate(timeout=60)
        out1, _ = first.communicate(timeout=60)
        h1 = int(out1.split()[1])
        assert out2.strip() == "heartbeats 0 tasks 0", f"the second peer took the identity over: {out2}"
        assert h1 >= 10, f"the first peer lost its connection: {out1}"


@test
def a_plaintext_client_cannot_reach_the_control_endpoint():
    with Cluster("sec-control", workers=1) as c:
        ep = conf(c)["control_endpoint"]
        keys = os.path.join(c.data, "keys")
        for auth in ("plain", f"unknown:{keys}/scheduler.pub"):
            # A job request shape is enough: the handshake fails before any frame.
            assert rogue("job", ep, auth, "rogue-control") == "no answer"
        assert "refused a peer at" in log(c, "scheduler")
        c.ctl("jobs")


if __name__ == "__main__":
    main()
