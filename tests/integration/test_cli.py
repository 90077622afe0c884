"""test_cli: patronctl as an operator meets it in the first hour (issue 16)
— `up` that leaves a running cluster alone and never stops what it did
not start, the documented exit status of every command, messages that say
what to do (no cluster under DIR, the cluster is down, the nearest word),
`--help` on every command of the table, and run-now's import-root rule
(in place under it, refused outside it unless --copy-in)."""
import json
import os
import re
import shutil
import signal
import subprocess
import time

from harness import BIN, SAMPLE, Cluster, cluster_pid, cluster_signal, main, test, wait_gone, workdir

OK, FAILED, USAGE, WITH_ERRORS, HELD, NOT_FOUND, REFUSED = range(7)
PROFILE = os.path.join(SAMPLE, "students.properties")
DAY1, DAY2, SITES = (os.path.join(SAMPLE, n) for n in ("day1.csv", "day2.csv", "sites.csv"))
NAMES = ("redis", "broker", "worker-1", "scheduler")


def ctl(data, *args, env=None, timeout=60):
    """patronctl --data DATA ARGS; the CompletedProcess (never raises on its exit)."""
    cmd = [os.path.join(BIN, "patronctl")] + (["--data", data] if data else []) + [str(a) for a in args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)


def expect(p, code, *words):
    """p exited code and its output holds every one of words."""
    out = p.stdout + p.stderr
    assert p.returncode == code, f"{p.args[1:]}: exit {p.returncode}, expected {code}\n{out[:3000]}"
    for w in words:
        assert w in out, f"{p.args[1:]}: no {w!r} in\n{out[:3000]}"
    return p


def env_without_token(**extra):
    env = {k: v for k, v in os.environ.items() if k != "PATRONSYNC_TOKEN"}
    env.update(extra)
    return env


def pids(c):
    return {n: cluster_pid(c, n) for n in NAMES}


def job_of(p):
    """The job id of a `run --json` (with or without --wait)."""
    return json.loads(p.stdout)["job_id"]


# ---- up ----

@test
def up_twice_leaves_the_running_cluster_alone():
    with Cluster("cli-up-twice", workers=1) as c:
        before = pids(c)
        assert all(before.values()), before
        conf = open(os.path.join(c.data, "run", "cluster.conf")).read()
        p = expect(ctl(c.data, "up", "--workers", 1), OK, f"a cluster is already running under {c.data}",
                   "Nothing was changed")
        assert pids(c) == before
        assert open(os.path.join(c.data, "run", "cluster.conf")).read() == conf, "cluster.conf was rewritten"
        # another worker count is not applied, and says so
        expect(ctl(c.data, "up", "--workers", 4), OK, "already running", "It has 1 worker",
               f"'patronctl --data {c.data} down'")
        assert pids(c) == before
        # still usable
        c.ctl("ref", "list")
        c.ctl("jobs")
        assert "worker-1" in p.stdout


@test
def up_on_a_half_running_cluster_says_what_runs_and_stops_nothing():
    with Cluster("cli-half", workers=2) as c:
        wait_gone(cluster_signal(c, "worker-2", signal.SIGKILL))
        before = pids(c)
        p = expect(ctl(c.data, "up"), FAILED, f"the cluster under {c.data} is half-running",
                   "not running: worker-2", f"'patronctl --data {c.data} down'", "Nothing was started or stopped")
        for n in NAMES:
            assert f"{n} (pid {before[n]})" in p.stderr, (n, p.stderr)
        assert pids(c) == before, "up stopped or started something"
        c.ctl("ref", "list")                     # the scheduler still answers
        expect(ctl(c.data, "down"), OK, "stopped")
        assert not any(pids(c).values())
        expect(ctl(c.data, "up", "--workers", 2), OK, "cluster up under")   # whole again


@test
def a_failed_up_stops_only_what_it_started():
    """A cluster runs whose pid files are gone (as after a careless clean-up):
    up starts its own processes, its broker finds the running one's lock and
    exits; up stops what it started and nothing of the cluster that runs."""
    with Cluster("cli-up-fails", workers=1) as c:
        before = pids(c)
        run = os.path.join(c.data, "run")
        kept = {f: open(os.path.join(run, f)).read() for f in os.listdir(run) if f.endswith(".pid")}
        conf = open(os.path.join(run, "cluster.conf")).read()
        for f in kept:
            os.unlink(os.path.join(run, f))
        p = expect(ctl(c.data, "up", "--workers", 1, timeout=120), FAILED, "broker exited while starting")
        for n, pid in before.items():
            os.kill(pid, 0)                        # alive: not stopped
        started = [f for f in os.listdir(run) if f.endswith(".pid")]
        assert started == [], f"up left pid files of what it started: {started} {p.stderr}"
        for f, text in kept.items():
            with open(os.path.join(run, f), "w") as out:
                out.write(text)
        with open(os.path.join(run, "cluster.conf"), "w") as out:
            out.write(conf)
        c.ctl("ref", "list")
        assert pids(c) == before


# ---- where the cluster is ----

@test
def no_cluster_under_dir_says_so_for_every_command_that_needs_one():
    d = workdir("cli-nocluster")
    for data in (os.path.join(d, "never-made"), d):
        for args in (["jobs"], ["status"], ["job", "show", "x"], ["patron", "show", "1"], ["ref", "list"],
                     ["schedule", "list"], ["site", "add", "A", "A site"], ["run", DAY1, "--profile", PROFILE],
                     ["job", "approve", "x"], ["down"]):
            p = expect(ctl(data, *args, timeout=10), FAILED,
                       f"no cluster under {data} (start one with 'patronctl --data {data} up', or pass --data)")
            assert "Redis at" not in p.stderr, p.stderr


@test
def a_cluster_that_is_down_fails_at_once():
    with Cluster("cli-down", workers=1) as c:
        wait_gone(cluster_signal(c, "scheduler", signal.SIGKILL))
        for args in (["ref", "list"], ["schedule", "list"], ["patron", "show", "1"], ["site", "add", "A", "A"],
                     ["run", DAY1, "--profile", PROFILE, "--copy-in"], ["job", "undo", "x"]):
            expect(ctl(c.data, *args, timeout=10), FAILED, f"the cluster under {c.data} is down",
                   "its scheduler is not running", f"'patronctl --data {c.data} down'")
        c.ctl("jobs")                              # Redis still answers
        c.ctl("down")
        for args in (["jobs"], ["status"], ["job", "show", "x"], ["ref", "list"], ["schedule", "show", "x"]):
            expect(ctl(c.data, *args, timeout=10), FAILED, f"the cluster under {c.data} is down",
                   f"'patronctl --data {c.data} up'")
        expect(ctl(c.data, "down"), OK, "was not running; nothing to stop")


# ---- words ----

def table():
    """(command, sub-command or None) of every row of `patronctl help`."""
    p = expect(ctl(None, "help"), OK, "usage: patronctl")
    rows = []
    for line in p.stdout.splitlines():
        m = re.match(r"^  ([a-z]+)(?: ([a-z]+))?(?=\s|$)", line)
        if m:
            rows.append((m.group(1), m.group(2)))
    return rows


@test
def help_on_every_command_of_the_table():
    rows = table()
    for want in (("up", None), ("run", None), ("job", "approve"), ("schedule", "disable"), ("profile", "check")):
        assert want in rows, (want, rows)
    nowhere = os.path.join(workdir("cli-help"), "none")      # --help needs no cluster
    for name, sub in rows:
        words = [name] + ([sub] if sub else [])
        for flag in ("--help", "-h"):
            p = expect(ctl(nowhere, *words, flag), OK, "usage: patronctl [--data DIR] " + " ".join(words))
            assert p.stderr == "", p.stderr
        expect(ctl(nowhere, "help", *words), OK, "usage: patronctl [--data DIR] " + " ".join(words))
        if sub:
            expect(ctl(nowhere, name, "--help"), OK, f"{name} {sub}")
    p = expect(ctl(nowhere, "run", "--help"), OK, "--copy-in", "--profile FILE.properties", "--max-remove-pct P",
               "import root")
    assert "unknown option" not in p.stdout + p.stderr
    expect(ctl(nowhere, "schedule", "add", "--help"), OK, "--inactivate-missing [yes|no]", "DAYS: Sun..Sat")
    expect(ctl(nowhere, "help"), OK, "6 refused (permission or token)", "docs/OPERATORS.md")
    expect(ctl(nowhere), USAGE, "usage: patronctl")


@test
def unknown_words_name_the_word_and_the_nearest_one():
    nowhere = os.path.join(workdir("cli-words"), "none")
    expect(ctl(nowhere, "jbos"), USAGE, "patronctl: unknown command 'jbos'; did you mean 'jobs'?")
    expect(ctl(nowhere, "shedule", "list"), USAGE, "unknown command 'shedule'; did you mean 'schedule'?")
    expect(ctl(nowhere, "approve", "x"), USAGE, "did you mean 'job approve'?")
    p = expect(ctl(nowhere, "frobnicate"), USAGE, "unknown command 'frobnicate'", "patronctl help")
    assert "did you mean" not in p.stderr, p.stderr
    expect(ctl(nowhere, "job", "aprove", "x"), USAGE, "patronctl job: unknown command 'aprove'; did you mean 'approve'?")
    expect(ctl(nowhere, "schedule", "lst"), USAGE, "did you mean 'list'?")
    expect(ctl(nowhere, "run", DAY1, "--profle", PROFILE), USAGE,
           "patronctl run: unknown option '--profle'; did you mean '--profile'?", "patronctl run --help")
    expect(ctl(nowhere, "job", "show", "x", "--jsn"), USAGE,
           "patronctl job show: unknown option '--jsn'; did you mean '--json'?")
    expect(ctl(nowhere, "jobs", "--profile", "x"), USAGE, "patronctl jobs: unknown option '--profile'")
    expect(ctl(nowhere, "run", DAY1, "--profile"), USAGE, "--profile needs a value")
    expect(ctl(nowhere, "job", "show"), USAGE, "patronctl job show: expected ID")
    expect(ctl(nowhere, "patron", "show", "1", "2"), USAGE, "unexpected argument '2'")


# ---- exit status, command by command ----

def held_run(c, path):
    """A run held by its update threshold (docs/SAFETY.md): exit 4, its id."""
    p = expect(ctl(c.data, "run", path, "--profile", PROFILE, "--copy-in", "--max-update-pct", "0", "--wait",
                   "--json"), HELD)
    s = json.loads(p.stdout)
    assert s["state"] == "held", s["state"]
    return s["job_id"], p


@test
def every_command_exits_as_documented():
    d = workdir("cli-exit-files")
    fifo = os.path.join(d, "fifo.csv")
    os.mkfifo(fifo)
    bad_profile = os.path.join(d, "bad.properties")
    with open(bad_profile, "w") as f:
        f.write("MatchUsingDistrictID=true\nfield_districtID={1}\nfield_lastName={3,map_nope}\n")
    bad_sites = os.path.join(d, "sites-bad.csv")
    with open(bad_sites, "w") as f:
        f.write("short_name,name,media\nOK1,A good site,yes\n,no short name\n")
    missing = os.path.join(d, "missing.csv")
    bad_token = dict(os.environ, PATRONSYNC_TOKEN="not-a-token")
    with Cluster("cli-exit", workers=2) as c:
        D = c.data
        # site add, site import
        expect(ctl(D, "site", "import", SITES), OK, "sites imported")
        expect(ctl(D, "site", "import", bad_sites), WITH_ERRORS, "1 sites imported, 1 lines refused")
        expect(ctl(D, "site", "import", missing), NOT_FOUND, f"cannot read {missing}")
        expect(ctl(D, "site", "import", fifo, timeout=10), USAGE, f"{fifo} is a fifo")
        expect(ctl(D, "site", "import", d), USAGE, "is a folder")
        expect(ctl(D, "site", "import", SITES, env=bad_token), REFUSED, "valid user token")
        expect(ctl(D, "site", "add", "NEW", "A new site", "--media"), OK, "site NEW saved")
        expect(ctl(D, "site", "add", "NEW"), USAGE, "expected SHORT \"Name\"")
        expect(ctl(D, "site", "add", "ELEVENCHARS", "Too long"), USAGE, "must be 1 to 10 characters")
        expect(ctl(D, "site", "add", "NEW", "x", env=bad_token), REFUSED, "refused", "valid user token")

        # run: complete, complete with errors, held, failed; operands missing or refused
        p = expect(ctl(D, "run", DAY1, "--profile", PROFILE, "--copy-in", "--wait", "--json"), OK)
        day1 = json.loads(p.stdout)
        assert day1["state"] == "complete", day1["state"]
        imp = os.path.join(D, "import", "cli")
        os.makedirs(imp)
        bom = os.path.join(imp, "bom-day1.csv")     # UTF-8 with its BOM, given as windows-1252: read, with a warning
        with open(bom, "wb") as f:
            f.write(b"\xef\xbb\xbf" + open(DAY1, "rb").read().decode("cp1252").encode("utf-8"))
        p = expect(ctl(D, "run", bom, "--profile", PROFILE, "--wait", "--json"), WITH_ERRORS)
        with_errors = json.loads(p.stdout)
        assert with_errors["state"] == "complete_with_errors", with_errors["state"]
        held, p = held_run(c, DAY2)
        assert f"'patronctl --data {D} job approve {held}'" in p.stderr, p.stderr
        assert f"'patronctl --data {D} job discard {held}'" in p.stderr, p.stderr
        p = expect(ctl(D, "run", DAY1, "--profile", PROFILE, "--copy-in", "--encoding", "KLINGON-8", "--wait",
                       "--json"), FAILED)
        failed = json.loads(p.stdout)
        assert failed["state"] == "failed", failed["state"]
        queued = expect(ctl(D, "run", DAY1, "--profile", PROFILE, "--copy-in"), OK).stdout.strip()   # no --wait
        assert re.fullmatch(r"run-[0-9TZ]+-[0-9a-f]+", queued), queued
        expect(ctl(D, "job", "show", queued, "--wait"), OK)
        expect(ctl(D, "run", missing, "--profile", PROFILE, "--copy-in"), NOT_FOUND, f"cannot read {missing}")
        expect(ctl(D, "run", DAY1, "--profile", missing, "--copy-in"), NOT_FOUND, f"cannot read {missing}")
        expect(ctl(D, "run", DAY1, "--copy-in"), USAGE, "--profile FILE.properties is required")
        expect(ctl(D, "run", DAY1, "--profile", bad_profile, "--copy-in"), USAGE, "profile refused",
               "map 'nope' is not defined")
        expect(ctl(D, "run", DAY1, "--profile", PROFILE, "--copy-in", "--min-records", "1000000"), USAGE,
               "Patron records read must be between 0 and 999,999.")
        expect(ctl(D, "run", DAY1, "--profile", PROFILE), USAGE, "outside the import root", "--copy-in")
        expect(ctl(D, "run", DAY1, "--profile", PROFILE, "--copy-in", env=bad_token), REFUSED, "valid user token")

        # jobs, job show
        expect(ctl(D, "jobs"), OK, day1["job_id"], held)
        expect(ctl(D, "jobs", "extra"), USAGE, "unexpected argument 'extra'")
        expect(ctl(D, "job", "show", day1["job_id"]), OK, "complete")
        expect(ctl(D, "job", "show", with_errors["job_id"]), WITH_ERRORS)
        expect(ctl(D, "job", "show", held), HELD, f"'patronctl --data {D} job approve {held}'")
        expect(ctl(D, "job", "show", failed["job_id"]), FAILED)
        expect(ctl(D, "job", "show", "run-nope"), NOT_FOUND, "no job 'run-nope'")

        # job approve / discard / undo
        expect(ctl(D, "job", "approve", held, env=bad_token), REFUSED, "valid user token")
        expect(ctl(D, "job", "approve", held, "--wait"), OK, "complete")
        expect(ctl(D, "job", "approve", held), FAILED, f"job {held} is not held: it ended complete")
        expect(ctl(D, "job", "approve", day1["job_id"]), FAILED, "it ended complete")
        expect(ctl(D, "job", "approve", "run-nope"), NOT_FOUND, "no job 'run-nope'")
        second, _ = held_run(c, DAY1)     # the store holds day 2 now: day 1 again updates
        expect(ctl(D, "job", "discard", second, env=bad_token), REFUSED, "valid user token")
        expect(ctl(D, "job", "discard", second), OK, "discarded")
        expect(ctl(D, "job", "discard", second), FAILED, "it ended discarded")
        expect(ctl(D, "job", "discard", "run-nope"), NOT_FOUND)
        expect(ctl(D, "job", "show", second), FAILED, "discarded")
        expect(ctl(D, "job", "undo", held, env=bad_token), REFUSED, "valid user token")
        expect(ctl(D, "job", "undo", held), OK, "Undone by")
        expect(ctl(D, "job", "undo", held), FAILED, "undone already")
        expect(ctl(D, "job", "undo", second), NOT_FOUND, "nothing to undo")
        expect(ctl(D, "job", "undo", "run-nope"), NOT_FOUND)
        expect(ctl(D, "job", "undo"), USAGE, "expected ID")

        # patron show
        some = c.db().execute("SELECT district_id FROM patrons WHERE district_id != '' LIMIT 1").fetchone()[0]
        expect(ctl(D, "patron", "show", some), OK, some)
        expect(ctl(D, "patron", "show", "no-such-id"), NOT_FOUND, "no patron with District ID 'no-such-id'")
        expect(ctl(D, "patron", "show", some, env=bad_token), REFUSED, "valid user token")
        expect(ctl(D, "patron", "show"), USAGE, "expected DISTRICT_ID")

        # status, profile check (local)
        expect(ctl(D, "status"), OK, "worker-1")
        expect(ctl(D, "status", "--jsn"), USAGE, "did you mean '--json'?")
        expect(ctl(D, "profile", "check", PROFILE, "--csv", DAY1), OK, "the profile is valid")
        expect(ctl(D, "profile", "check", bad_profile), FAILED, "map 'nope' is not defined")
        expect(ctl(D, "profile", "check", missing), NOT_FOUND, f"cannot read {missing}")
        expect(ctl(D, "profile", "check", PROFILE, "--csv", missing), NOT_FOUND, f"cannot read {missing}")
        expect(ctl(D, "profile", "check", PROFILE, "--csv", fifo, timeout=10), USAGE, "is a fifo")
        expect(ctl(D, "profile", "check"), USAGE, "expected FILE.properties")

        # ref add, ref list
        expect(ctl(D, "ref", "add", "patron-type", "Visitor"), OK)
        expect(ctl(D, "ref", "add", "colour", "Blue"), USAGE)
        expect(ctl(D, "ref", "add", "patron-type"), USAGE, "expected patron-type|access-level|resource-group NAME...")
        expect(ctl(D, "ref", "add", "patron-type", "X", env=bad_token), REFUSED, "valid user token")
        expect(ctl(D, "ref", "list"), OK, "Visitor")
        expect(ctl(D, "ref", "list", env=bad_token), REFUSED, "valid user token")

        # schedule add|edit|show|list|delete|run|enable|disable
        shutil.copyfile(DAY1, os.path.join(imp, "nightly.csv"))
        expect(ctl(D, "schedule", "add", "Nightly", "--file", "cli/nightly.csv", "--profile", PROFILE, "--time",
                   "23:30", "--full", "weekdays"), OK)
        expect(ctl(D, "schedule", "add", "Nightly", "--file", "cli/nightly.csv", "--profile", PROFILE, "--time",
                   "23:30", "--full", "weekdays"), USAGE, "already exists")
        expect(ctl(D, "schedule", "add", "Other", "--file", "x.csv", "--profile", missing, "--time", "01:00",
                   "--full", "daily"), NOT_FOUND, f"cannot read {missing}")
        expect(ctl(D, "schedule", "add", "Other", "--bogus", "1"), USAGE, "patronctl schedule add: unknown option '--bogus'")
        expect(ctl(D, "schedule", "list"), OK, "Nightly")
        expect(ctl(D, "schedule", "show", "Nightly"), OK, "Nightly")
        expect(ctl(D, "schedule", "show", "Nobody"), NOT_FOUND, "no schedule named 'Nobody'")
        expect(ctl(D, "schedule", "edit", "Nightly", "--time", "22:00"), OK)
        expect(ctl(D, "schedule", "edit", "Nobody", "--time", "22:00"), NOT_FOUND)
        expect(ctl(D, "schedule", "disable", "Nightly"), OK)
        expect(ctl(D, "schedule", "enable", "Nightly"), OK)
        expect(ctl(D, "schedule", "enable", "Nobody"), NOT_FOUND)
        expect(ctl(D, "schedule", "disable", "Nobody"), NOT_FOUND)
        p = expect(ctl(D, "schedule", "run", "Nightly", "--wait", "--json"), OK)
        assert json.loads(p.stdout)["state"] == "complete"
        expect(ctl(D, "schedule", "run", "Nobody"), NOT_FOUND)
        expect(ctl(D, "schedule", "list", env=bad_token), REFUSED, "valid user token")
        expect(ctl(D, "schedule", "delete", "Nightly"), OK)
        expect(ctl(D, "schedule", "delete", "Nightly"), NOT_FOUND)

        # a missing token: none in the environment, no DATA/admin.token
        token = os.path.join(D, "admin.token")
        os.rename(token, token + ".away")
        try:
            for args in (["ref", "list"], ["patron", "show", some], ["schedule", "list"],
                         ["run", DAY1, "--profile", PROFILE, "--copy-in"], ["job", "approve", held]):
                expect(ctl(D, *args, env=env_without_token()), REFUSED, "no user token", token)
        finally:
            os.rename(token + ".away", token)

        # up and down
        expect(ctl(D, "up"), OK, "already running")
        expect(ctl(D, "up", "--workers", "many"), USAGE, "--workers 'many' is not a number")
        expect(ctl(D, "down", "now"), USAGE, "unexpected argument 'now'")


# ---- run-now and the import root ----

@test
def run_now_reads_under_the_import_root_in_place_and_refuses_the_rest():
    d = workdir("cli-root-files")
    with Cluster("cli-root", workers=1) as c:
        c.sites()
        root = os.path.join(c.data, "import")
        inside = os.path.join(root, "exports", "day1.csv")
        os.makedirs(os.path.dirname(inside))
        shutil.copyfile(DAY1, inside)
        # in place: the job reads the file under the root by its own name, and leaves it there
        p = expect(ctl(c.data, "run", inside, "--profile", PROFILE, "--wait", "--json"), OK)
        s = json.loads(p.stdout)
        assert s["file"] == "exports/day1.csv", s["file"]
        assert s["counts"]["added"] == 3000, s["counts"]
        assert open(inside, "rb").read() == open(DAY1, "rb").read()
        adhoc = os.path.join(root, "adhoc")
        assert os.listdir(adhoc) == [], os.listdir(adhoc)
        # a relative name is resolved first
        rel = os.path.relpath(inside)
        expect(ctl(c.data, "run", rel, "--profile", PROFILE, "--wait"), OK)
        # a link inside the root to a file inside it: in place too
        os.symlink("day1.csv", os.path.join(root, "exports", "today.csv"))
        p = expect(ctl(c.data, "run", os.path.join(root, "exports", "today.csv"), "--profile", PROFILE, "--wait",
                       "--json"), OK)
        assert json.loads(p.stdout)["file"] == "exports/day1.csv"

        # outside the root: refused, naming the file, the root and the option; nothing copied, no job
        jobs = len(json.loads(c.ctl("jobs", "--json").stdout))
        outside = os.path.join(d, "day2.csv")
        shutil.copyfile(DAY2, outside)
        expect(ctl(c.data, "run", outside, "--profile", PROFILE), USAGE,
               f"patronctl run: {outside} is outside the import root {os.path.realpath(root)}", "--copy-in")
        if os.path.exists("/etc/shadow"):
            expect(ctl(c.data, "run", "/etc/shadow", "--profile", PROFILE), USAGE,
                   "/etc/shadow is outside the import root", "--copy-in")
        # a link inside the root leading out of it is outside
        os.symlink(outside, os.path.join(root, "exports", "escape.csv"))
        expect(ctl(c.data, "run", os.path.join(root, "exports", "escape.csv"), "--profile", PROFILE), USAGE,
               f"({outside}) is outside the import root")
        assert os.listdir(adhoc) == [] and len(json.loads(c.ctl("jobs", "--json").stdout)) == jobs

        # never a fifo, a device or a folder, wherever, with --copy-in or not (and never waited on)
        fifo_out, fifo_in = os.path.join(d, "pipe.csv"), os.path.join(root, "pipe.csv")
        os.mkfifo(fifo_out)
        os.mkfifo(fifo_in)
        for path in (fifo_out, fifo_in):
            for extra in ([], ["--copy-in"]):
                expect(ctl(c.data, "run", path, "--profile", PROFILE, *extra, timeout=10), USAGE,
                       f"{path} is a fifo")
        expect(ctl(c.data, "run", "/dev/null", "--profile", PROFILE, "--copy-in"), USAGE, "/dev/null is a device")
        expect(ctl(c.data, "run", d, "--profile", PROFILE, "--copy-in"), USAGE, "is a folder")
        expect(ctl(c.data, "run", os.path.join(root, "exports"), "--profile", PROFILE), USAGE, "is a folder")

        # with --copy-in: copied into import/adhoc/, run, the copy removed when the job ends
        p = expect(ctl(c.data, "run", outside, "--profile", PROFILE, "--copy-in", "--wait", "--json"), OK)
        s = json.loads(p.stdout)
        assert s["file"].startswith("adhoc/") and s["file"].endswith("day2.csv"), s["file"]
        deadline = time.time() + 10
        while os.listdir(adhoc) and time.time() < deadline:
            time.sleep(0.1)
        assert os.listdir(adhoc) == [], os.listdir(adhoc)
        assert os.path.exists(outside)


if __name__ == "__main__":
    main()
