"""harness: what every integration test uses — a real single-host cluster
started with patronctl (private redis-server on a free port, broker,
workers, scheduler), generated district files, and a canonical dump of the
store. Tests register with @test and end with "N passed, N failed"."""
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("PATRONSYNC_BIN", os.path.join(ROOT, "build"))
WORK = os.environ.get("TEST_WORK", os.path.join(ROOT, "tests", "work", "manual"))
SANITIZED = os.environ.get("SANITIZED", "0") == "1"
GEN = os.path.join(ROOT, "tools", "gen_patrons.py")
SAMPLE = os.path.join(ROOT, "sample")

_tests = []


def test(fn):
    _tests.append(fn)
    return fn


def main():
    only = sys.argv[1:] or None
    passed = failed = 0
    for fn in _tests:
        if only and fn.__name__ not in only:
            continue
        t0 = time.time()
        try:
            fn()
            passed += 1
            print(f"ok - {fn.__name__} ({time.time() - t0:.1f}s)", flush=True)
        except Exception:
            failed += 1
            print(f"not ok - {fn.__name__}", flush=True)
            traceback.print_exc(file=sys.stdout)
    print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed else 0)


def workdir(name):
    d = os.path.join(WORK, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def generate(path, rows, seed, encoding="cp1252", mutate_from=None, extra=()):
    """A realistic district file from the repository's generator."""
    args = [sys.executable, GEN, "--seed", str(seed), "--encoding", encoding, "-o", path]
    if mutate_from:
        args += ["--mutate-from", mutate_from]
    else:
        args += ["--rows", str(rows)]
    subprocess.run(args + list(extra), check=True)
    return path


def district(d, rows, seed, profile_name="students.properties"):
    """A generated district in folder d: day1.csv (windows-1252), its
    sites.csv and its profile. Returns (day1, profile, sites)."""
    prof, sites = os.path.join(d, profile_name), os.path.join(d, "sites.csv")
    day1 = generate(os.path.join(d, "day1.csv"), rows, seed, extra=["--sites-out", sites, "--profile-out", prof])
    # The generator writes the profile for its --encoding; ours is cp1252.
    text = open(prof, encoding="utf-8").read().replace("CsvTextEncoding=UTF-8", "CsvTextEncoding=windows-1252")
    open(prof, "w", encoding="utf-8").write(text)
    return day1, prof, sites


class Cluster:
    """A private cluster under its own data folder."""

    def __init__(self, name, workers=3, settings=None):
        self.dir = workdir(name)
        self.data = os.path.join(self.dir, "data")
        os.makedirs(self.data)
        conf = {"settle_seconds": "0", "log_level": "info", "heartbeat_ms": "300"}
        conf.update(settings or {})
        with open(os.path.join(self.data, "patronsync.conf"), "w") as f:
            for k, v in conf.items():
                f.write(f"{k}={v}\n")
        self.workers = workers

    def ctl(self, *args, check=True, timeout=600):
        cmd = [os.path.join(BIN, "patronctl"), "--data", self.data] + [str(a) for a in args]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}")
        return p

    def __enter__(self):
        self.ctl("up", "--workers", self.workers)
        return self

    def __exit__(self, *exc):
        self.ctl("down", check=False)

    def sites(self, path=os.path.join(SAMPLE, "sites.csv")):
        self.ctl("site", "import", path)

    def run(self, path, profile, *extra, expect_exit=None):
        """Run a file to its end; returns the JSON summary. The tests' files
        live outside the import root: --copy-in (a file under it runs in place)."""
        p = self.ctl("run", path, "--profile", profile, "--copy-in", "--wait", "--json", *extra, check=False)
        if expect_exit is not None:
            assert p.returncode == expect_exit, f"exit {p.returncode}, expected {expect_exit}: {p.stderr}{p.stdout[:2000]}"
        elif p.returncode not in (0, 3):
            raise AssertionError(f"run exited {p.returncode}: {p.stderr}\n{p.stdout[:2000]}")
        return json.loads(p.stdout) if p.stdout.strip() else None

    def db(self):
        return sqlite3.connect(os.path.join(self.data, "store.db"))

    def dump(self):
        """Canonical dump of the patron tables: what a user would compare."""
        return dump_store(os.path.join(self.data, "store.db"))


def dump_store(path):
    con = sqlite3.connect(path)
    # Left out: ids and job names, and what is derived from the row itself
    # (row_hash, and src_hash: the unchanged-record memo, docs/RULES.md).
    cols = [r[1] for r in con.execute("PRAGMA table_info(patrons)")
            if r[1] not in ("id", "created_job", "updated_job", "row_hash", "src_hash")]
    rows = con.execute(f"SELECT {','.join(cols)} FROM patrons ORDER BY district_id, barcode").fetchall()
    sites = con.execute("SELECT * FROM sites ORDER BY short_name").fetchall()
    ok = con.execute("PRAGMA integrity_check").fetchone()[0]
    con.close()
    assert ok == "ok", f"integrity_check: {ok}"
    return {"columns": cols, "patrons": rows, "sites": sites}


def summary_key(s):
    """What must be equal between two runs of the same file: counts and lines."""
    return (s["state"], s["counts"],
            sorted((e["line"], e["district_id"], e["outcome"], e["message"]) for e in s["exceptions"]))


# ---- fault injection helpers (the chaos tests) ----

def _pid(data, name):
    try:
        pid = int(open(os.path.join(data, "run", f"{name}.pid")).read().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def cluster_pid(cluster, name):
    return _pid(cluster.data, name)


def cluster_signal(cluster, name, sig):
    pid = _pid(cluster.data, name)
    assert pid, f"{name} is not running"
    os.kill(pid, sig)
    return pid


def wait_gone(pid, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        try:
            os.kill(pid, 0)
        except OSError:
            return
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"pid {pid} still alive")


def cluster_start(cluster, name, argv):
    """(Re)start one process the way patronctl up does."""
    log = open(os.path.join(cluster.data, "logs", f"{name}.log"), "a")
    p = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    with open(os.path.join(cluster.data, "run", f"{name}.pid"), "w") as f:
        f.write(f"{p.pid}\n")
    return p


def cluster_restart(cluster, name):
    data = cluster.data
    if name == "redis":
        # The way patronctl up starts it: its settings (port, ACL user) in
        # the file it reads, never on its argument list.
        argv = ["redis-server", os.path.join(data, "run", "redis.conf")]
    else:
        exe = {"broker": "patron-broker", "scheduler": "patron-scheduler"}.get(name, "patron-worker")
        argv = [os.path.join(BIN, exe), "--data", data]
        if exe == "patron-worker":
            argv += ["--set", f"worker_id={name}"]
    return cluster_start(cluster, name, argv)


def count_rejected(cluster, name):
    """Frames a process counted as rejected, from its last 'stopped' line."""
    n = None
    for line in open(os.path.join(cluster.data, "logs", f"{name}.log"), errors="replace"):
        if "frames rejected" in line:
            n = int(line.split("(")[-1].split()[0])
    return n
