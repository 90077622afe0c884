"""test_security_users: who may do what (issue 18) — every control verb
refused without a token, with a wrong one, with a token plus a NUL byte
and garbage, for a view_jobs user and for a disabled user: refused,
audited, nothing changed, 1,000 attempts in a loop accepting none; a
proper user is obeyed and audited; a view_jobs user made with `user add
--json` lists but cannot run a file or add a schedule."""
import json
import os
import sqlite3
import subprocess
import time

from harness import BIN, SAMPLE, Cluster, main, test

PROFILE = os.path.join(SAMPLE, "students.properties")


def _varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def _field(num, data):
    data = data.encode() if isinstance(data, str) else data
    return _varint(num << 3 | 2) + _varint(len(data)) + data


def request(verb, token=b"", args=(), opts=(), payload=b""):
    body = (_field(1, token) if token else b"") + _field(2, verb)
    for a in args:
        body += _field(3, a)
    for k, v in opts:
        body += _field(4, _field(1, k) + _field(2, v))
    return body + (_field(5, payload) if payload else b"")


def send(c, body, n=1):
    keys = os.path.join(c.data, "keys")
    ep = [l.split("=", 1)[1].strip() for l in open(os.path.join(c.data, "run", "cluster.conf"))
          if l.startswith("control_endpoint=")][0]
    p = subprocess.run([os.path.join(BIN, "tools", "zmq_rogue"), "control", ep,
                        f"key:{keys}/scheduler.pub:{keys}/client.key", str(n)],
                       input=body, capture_output=True, timeout=600)
    assert p.returncode == 0, p.stderr
    replies, accepted = (int(x) for x in p.stdout.split()[1::2])
    return replies, accepted


def state(c):
    """What a refused request must not change: control.db's rows and the store."""
    con = sqlite3.connect(os.path.join(c.data, "control.db"))
    rows = {t: con.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
            for t in ("users", "schedules", "outbox", "slots", "runs")}
    con.close()
    return rows, c.dump()


def audit(c, where):
    con = sqlite3.connect(os.path.join(c.data, "control.db"))
    n = con.execute(f"SELECT count(*) FROM audit WHERE {where}").fetchone()[0]
    con.close()
    return n


# Every control verb but ping, with operands enough to do something.
VERBS = [("run", ["day1.csv"], [("profile_name", "p.properties")], PROFILE),
         ("site.add", ["EVIL", "Evil School"], [], None), ("site.import", [], [], None),
         ("patron.show", ["1"], [], None), ("schedule.add", ["Evil"], [("file", "day1.csv"), ("time", "01:00"),
                                                                      ("full", "daily")], PROFILE),
         ("schedule.edit", ["Nightly"], [("time", "03:00")], None), ("schedule.show", ["Nightly"], [], None),
         ("schedule.list", [], [], None), ("schedule.delete", ["Nightly"], [], None),
         ("schedule.run", ["Nightly"], [], None), ("schedule.enable", ["Nightly"], [], None),
         ("schedule.disable", ["Nightly"], [], None), ("job.approve", ["x"], [], None),
         ("job.discard", ["x"], [], None), ("job.undo", ["x"], [], None),
         ("ref.add", ["patron-type", "Evil"], [], None), ("ref.list", [], [], None),
         ("user.add", ["mallory"], [("permission", "manage_patrons_district")], None), ("user.list", [], [], None),
         ("user.grant", ["viewer"], [("permission", "manage_patrons_district")], None),
         ("user.revoke", ["admin"], [("permission", "manage_patrons_district")], None),
         ("user.disable", ["admin"], [], None), ("user.enable", ["off"], [], None), ("user.token", ["admin"], [], None),
         ("audit.list", [], [], None)]
MANAGE_ONLY = {v for v, *_ in VERBS} - {"patron.show", "schedule.show", "schedule.list", "ref.list"}


def body_of(verb, token, args, opts, payload_path):
    payload = open(payload_path, "rb").read() if payload_path else b""
    return request(verb, token, args, opts, payload)


@test
def every_verb_refuses_a_bad_token_a_viewer_and_a_disabled_user():
    with Cluster("sec-users", workers=1) as c:
        c.sites()
        c.ctl("schedule", "add", "Nightly", "--file", "day1.csv", "--profile", PROFILE, "--time", "02:00",
              "--full", "daily")
        viewer = json.loads(c.ctl("user", "add", "viewer", "--permission", "view_jobs", "--json").stdout)
        off = json.loads(c.ctl("user", "add", "off", "--permission", "manage_patrons_district", "--json").stdout)
        c.ctl("user", "disable", "off")
        admin = open(os.path.join(c.data, "admin.token")).read().strip().encode()
        before = state(c)
        kinds = {"no token": b"", "a wrong token": b"0" * 64, "a token, a NUL and garbage": admin + b"\0garbage",
                 "the token cut short": admin[:-1], "a disabled user's": off["token"].encode()}
        # A view_jobs user first: the bad tokens below put this client in its
        # back-off, where requests are refused before any token is looked at.
        for verb, args, opts, payload in VERBS:
            r, a = send(c, body_of(verb, viewer["token"].encode(), args, opts, payload))
            if verb in MANAGE_ONLY:
                assert r == 1 and a == 0, f"{verb} by a view_jobs user was accepted"
        for what, token in kinds.items():
            for verb, args, opts, payload in VERBS:
                r, a = send(c, body_of(verb, token, args, opts, payload))
                assert r == 1 and a == 0, f"{verb} with {what} was accepted"
        assert state(c) == before, "a refused request changed something"
        n_bad = len(kinds) * len(VERBS)
        assert audit(c, "result IN ('refused','throttled')") >= n_bad + len(MANAGE_ONLY)
        assert audit(c, "user='viewer' AND result='refused' AND status=6") == len(MANAGE_ONLY)
        assert audit(c, "user='off' AND result='refused'") + audit(c, "result='throttled'") >= len(VERBS)
        assert audit(c, "peer LIKE '127.0.0.1%key client%'") > 0
        # A proper user is obeyed, and audited, once this client's back-off
        # has run out (it doubles with each failure past the fifth, 60 s at most).
        end = time.time() + 70
        while send(c, body_of("ref.add", admin, ["patron-type", "Staff"], [], None)) != (1, 1):
            assert time.time() < end, "the back-off never ended"
            time.sleep(0.5)
        assert audit(c, "user='admin' AND verb='ref.add' AND result='ok' AND detail='patron-type Staff'") == 1
        # patronctl audit shows the trail, refusals with it.
        trail = json.loads(c.ctl("audit", "--json", "--since", "1d").stdout)
        assert any(t["user"] == "unknown token" and t["result"] in ("refused", "throttled") for t in trail)
        assert any(t["user"] == "viewer" and t["verb"] == "schedule.add" and t["result"] == "refused" for t in trail)
        # No token in the audit trail, the logs or the run files.
        tokens = [admin.decode(), viewer["token"], off["token"]]
        for top, _, names in os.walk(c.data):
            for n in names:
                path = os.path.join(top, n)
                if n in ("admin.token",) or n.endswith((".db-wal", ".db-shm")):
                    continue
                text = open(path, "rb").read()
                for t in tokens:
                    assert t.encode() not in text, f"a token in {path}"


@test
def a_thousand_wrong_tokens_none_accepted_all_audited():
    with Cluster("sec-users-loop", workers=1) as c:
        before = state(c)
        r, a = send(c, request("schedule.add", b"f" * 64, ["Evil"], [("file", "x.csv"), ("time", "01:00"),
                                                                     ("full", "daily")], b"field_districtID={1}\n"),
                    n=1000)
        assert (r, a) == (1000, 0), (r, a)
        assert audit(c, "verb='schedule.add' AND result IN ('refused','throttled')") == 1000
        assert audit(c, "result='throttled'") > 900, "failed attempts were not slowed"
        assert state(c) == before
        log = open(os.path.join(c.data, "logs", "scheduler.log"), errors="replace").read()
        assert "control: refused a request from 127.0.0.1" in log


@test
def a_view_jobs_user_lists_but_cannot_run_or_schedule():
    with Cluster("sec-viewer", workers=1) as c:
        c.sites()
        out = json.loads(c.ctl("user", "add", "viewer", "--permission", "view_jobs", "--json").stdout)
        assert out["user"]["permissions"] == ["view_jobs"] and len(out["token"]) == 64
        tok = os.path.join(c.dir, "viewer.token")
        with open(tok, "w") as f:
            f.write(out["token"] + "\n")
        os.chmod(tok, 0o600)
        as_viewer = ["--token-file", tok]
        c.ctl(*as_viewer, "schedule", "list")
        c.ctl(*as_viewer, "jobs")
        run = c.ctl(*as_viewer, "run", os.path.join(SAMPLE, "day1.csv"), "--profile", PROFILE, "--copy-in",
                    check=False)
        assert run.returncode == 6 and "does not have the manage_patrons_district permission" in run.stderr, run.stderr
        add = c.ctl(*as_viewer, "schedule", "add", "X", "--file", "day1.csv", "--profile", PROFILE, "--time",
                    "01:00", "--full", "daily", check=False)
        assert add.returncode == 6, add.stderr
        assert json.loads(c.ctl("schedule", "list", "--json").stdout) == []
        # A token file others may read is refused; the environment works too.
        os.chmod(tok, 0o644)
        loose = c.ctl(*as_viewer, "schedule", "list", check=False)
        assert loose.returncode != 0 and "chmod 600" in loose.stderr, loose.stderr
        env = dict(os.environ, PATRONSYNC_TOKEN=out["token"])
        p = subprocess.run([os.path.join(BIN, "patronctl"), "--data", c.data, "schedule", "list"], env=env,
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        # --token: accepted, and gone from the argument list at once.
        p = subprocess.run([os.path.join(BIN, "patronctl"), "--data", c.data, "--token", out["token"], "schedule",
                            "list"], capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        users = json.loads(c.ctl("user", "list", "--json").stdout)
        assert {u["name"] for u in users} == {"admin", "viewer"}
        assert all("token" not in u for u in users)


if __name__ == "__main__":
    main()
