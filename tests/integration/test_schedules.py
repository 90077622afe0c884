"""Schedules end to end (issue 5): real clusters whose scheduler reads a
test clock (the test_clock_file setting), so days pass in seconds. Two
files on a school week across the March DST change (students Full daily,
staff Incremental on weekdays) fire at the right instants with the right
summaries; a job fired while the broker is down runs once when it is back;
a scheduler killed between claim and send, and one down across three
slots, make exactly the jobs they should; the patronctl verbs."""
import csv
import datetime
import io
import json
import os
import re
import signal
import sqlite3
import subprocess
import time

from harness import BIN, SAMPLE, Cluster, main, test, workdir

NY = "America/New_York"
PROFILE = os.path.join(SAMPLE, "students.properties")


def utc(y, mo, d, h=0, mi=0):
    return int(datetime.datetime(y, mo, d, h, mi, tzinfo=datetime.timezone.utc).timestamp())


def wait_for(cond, what, timeout=90):
    """Ask until cond() gives something true (never a fixed sleep)."""
    until = time.time() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.time() > until:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Clock:
    def __init__(self, path, t):
        self.path = path
        self.set(t)

    def set(self, t):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{int(t)}\n")
        os.replace(tmp, self.path)
        self.t = int(t)


class SchedCluster(Cluster):
    """A cluster whose scheduler runs on a test clock."""

    def __init__(self, name, start, workers=2, settings=None):
        d = workdir(name + "-clock")
        self.clock = Clock(os.path.join(d, "clock"), start)
        conf = {"timezone": NY, "test_clock_file": self.clock.path, "ack_resend_ms": "100"}
        conf.update(settings or {})
        super().__init__(name, workers=workers, settings=conf)

    def show(self, name):
        return json.loads(self.ctl("schedule", "show", name, "--json").stdout)

    def summary(self, job):
        p = self.ctl("job", "show", job, "--wait", "--json", check=False)
        assert p.returncode in (0, 3), f"job {job}: exit {p.returncode} {p.stderr}"
        return json.loads(p.stdout)

    def control_db(self):
        return sqlite3.connect(os.path.join(self.data, "control.db"))

    def pid(self, name):
        with open(os.path.join(self.data, "run", f"{name}.pid")) as f:
            return int(f.read())

    def kill(self, name, sig=signal.SIGKILL):
        pid = self.pid(name)
        os.kill(pid, sig)
        self.wait_gone(pid, name)

    def wait_gone(self, pid, name):
        def gone():
            try:
                os.kill(pid, 0)
                return False
            except ProcessLookupError:
                return True
        wait_for(gone, f"{name} to exit")

    def start(self, name, *extra):
        """Start a process as patronctl up does: detached (not our child, so
        patronctl down can stop and reap it), logging to DATA/logs."""
        cmd = [os.path.join(BIN, f"patron-{name}"), "--data", os.path.abspath(self.data), *extra]
        env = dict(os.environ, LOG=os.path.join(self.data, "logs", f"{name}.log"))
        p = subprocess.run(["sh", "-c", 'setsid "$@" </dev/null >>"$LOG" 2>&1 & echo $!', "sh", *cmd],
                           env=env, capture_output=True, text=True, check=True)
        pid = int(p.stdout.strip())
        with open(os.path.join(self.data, "run", f"{name}.pid"), "w") as f:
            f.write(f"{pid}\n")
        return pid

    def log(self, name):
        with open(os.path.join(self.data, "logs", f"{name}.log"), encoding="utf-8", errors="replace") as f:
            return f.read()


def read_rows(path):
    with open(path, encoding="cp1252", newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], [r for r in rows[1:] if r]


def write_rows(path, header, rows):
    """cp1252 CSV with CRLF; returns the text of each row as written."""
    lines = []
    for r in [header] + rows:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\r\n").writerow(r)
        lines.append(buf.getvalue())
    with open(path, "w", encoding="cp1252", newline="") as f:
        f.write("".join(lines))
    return lines


def line_ends(text):
    return len(re.findall(r"\r\n|\r|\n", text))


def split_sample(day):
    """The sample day's rows: (header, students, staff), staff by their E ids."""
    header, rows = read_rows(os.path.join(SAMPLE, f"{day}.csv"))
    staff = [r for r in rows if r[0].startswith("E")]
    students = [r for r in rows if not r[0].startswith("E")]
    return header, students, staff


@test
def school_week_two_files():
    d = workdir("week-files")
    header, students1, staff1 = split_sample("day1")
    _, students2, staff2 = split_sample("day2")
    start = utc(2026, 3, 6, 5, 0)  # Friday 00:00 EST; Sunday the 8th clocks go forward
    with SchedCluster("week", start) as c:
        c.sites()
        imp = os.path.join(c.data, "import")
        write_rows(os.path.join(imp, "students.csv"), header, students1)
        staff_lines1 = write_rows(os.path.join(imp, "staff.csv"), header, staff1)
        c.ctl("schedule", "add", "Students", "--file", "students.csv", "--profile", PROFILE, "--time", "06:00",
              "--full", "daily")
        c.ctl("schedule", "add", "Staff", "--file", "staff.csv", "--profile", PROFILE, "--time", "6:30 PM",
              "--incremental", "mon-fri", "--keep-jobs", "10")
        listing = c.ctl("schedule", "list").stdout
        assert re.search(r"Staff\s+admin\s+never\s+2026-03-06 18:30 Incremental\s+0", listing), listing
        uid = {n: c.show(n)["id"] for n in ("Students", "Staff")}

        # Every slot of the week, in order: (instant, schedule, local date, mode).
        slots = [(utc(2026, 3, 6, 11), "Students", "2026-03-06", "Full"),
                 (utc(2026, 3, 6, 23, 30), "Staff", "2026-03-06", "Incremental"),
                 (utc(2026, 3, 7, 11), "Students", "2026-03-07", "Full"),
                 (utc(2026, 3, 8, 10), "Students", "2026-03-08", "Full"),     # 06:00 EDT
                 (utc(2026, 3, 9, 10), "Students", "2026-03-09", "Full"),
                 (utc(2026, 3, 9, 22, 30), "Staff", "2026-03-09", "Incremental"),
                 (utc(2026, 3, 10, 10), "Students", "2026-03-10", "Full"),
                 (utc(2026, 3, 10, 22, 30), "Staff", "2026-03-10", "Incremental"),
                 (utc(2026, 3, 11, 10), "Students", "2026-03-11", "Full"),
                 (utc(2026, 3, 11, 22, 30), "Staff", "2026-03-11", "Incremental")]
        jobs = {}
        bad_line = None
        for at, name, date, mode in slots:
            # The files of the day, put there before the slot as the SIS would.
            if (name, date) == ("Students", "2026-03-09"):
                write_rows(os.path.join(imp, "students.csv"), header, students2)
            if (name, date) == ("Staff", "2026-03-10"):
                bad = list(staff2[0])
                # a new staff member at a site that does not exist
                bad[0], bad[1], bad[8] = "E99999999", "99999999999999", "999"
                lines = write_rows(os.path.join(imp, "staff.csv"), header, staff2 + [bad])
                bad_line = line_ends("".join(lines[:-1])) + 1
            # One second before: not yet; it is the next run.
            c.clock.set(at - 1)
            s = c.show(name)
            assert s["next_run"]["at_ms"] == at * 1000, (name, date, s["next_run"])
            assert all(r["local_date"] != date for r in s["runs"]), (name, date, s["runs"])
            c.clock.set(at + 1)
            s = c.show(name)
            run = s["runs"][0]
            want_id = f"{uid[name]}-{date.replace('-', '')}"
            assert (run["job_id"], run["local_date"], run["at_ms"], run["mode"]) == (want_id, date, at * 1000, mode), run
            jobs[(name, date)] = c.summary(want_id)

        def counts(name, date):
            s = jobs[(name, date)]
            assert s["state"] == "complete", (name, date, s["state"], s["error"])
            assert s["schedule"] == name
            return s["counts"]

        n1, n2 = len(students1), len(students2)
        k = counts("Students", "2026-03-06")
        assert k["read"] == n1 and k["added"] == n1, k
        for date in ("2026-03-07", "2026-03-08"):
            k = counts("Students", date)
            assert k["read"] == n1 and k["unchanged"] == n1 and k["added"] + k["updated"] == 0, (date, k)
        k = counts("Students", "2026-03-09")
        new_ids = {r[0] for r in students2} - {r[0] for r in students1}
        assert k["read"] == n2 and k["added"] == len(new_ids) and k["updated"] > 0, k
        assert k["added"] + k["updated"] + k["unchanged"] == n2, k
        for date in ("2026-03-10", "2026-03-11"):
            k = counts("Students", date)
            assert k["read"] == n2 and k["unchanged"] == n2, (date, k)

        s1, s2 = len(staff1), len(staff2)
        k = counts("Staff", "2026-03-06")
        assert k["read"] == s1 and k["added"] == s1, k
        assert any("no previous run" in n for n in jobs[("Staff", "2026-03-06")]["notes"])
        k = counts("Staff", "2026-03-09")
        assert k["read"] == s1 and k["unchanged"] == s1 and k["added"] + k["updated"] == 0, k
        note = f"Incremental run: {s1} of {s1} records were unchanged since the previous run (job {uid['Staff']}-20260306)"
        assert any(n.startswith(note) for n in jobs[("Staff", "2026-03-09")]["notes"]), jobs[("Staff", "2026-03-09")]["notes"]

        # Tuesday: only the staff rows that changed are processed.
        old = {r[0]: staff_lines1[i + 1] for i, r in enumerate(staff1)}
        new_lines = write_rows(os.path.join(d, "staff2.csv"), header, staff2)
        same = sum(1 for i, r in enumerate(staff2) if old.get(r[0]) == new_lines[i + 1])
        added = {r[0] for r in staff2} - set(old)
        assert 0 < same < s2
        k = counts("Staff", "2026-03-10")
        skips = sorted((e["line"], e["district_id"]) for e in jobs[("Staff", "2026-03-10")]["exceptions"]
                       if e["outcome"] == "SKIP")
        assert k["read"] == s2 + 1 and k["added"] == len(added) and k["invalid_skipped"] == len(skips), (k, skips)
        assert k["unchanged"] >= same and k["updated"] + k["added"] + k["unchanged"] + k["invalid_skipped"] == s2 + 1, k
        notes = jobs[("Staff", "2026-03-10")]["notes"]
        assert any(n.startswith(f"Incremental run: {same} of {s2 + 1} records were unchanged") for n in notes), notes
        # Line numbers are the file's, though records before them were left out.
        assert (bad_line, "E99999999") in skips, skips
        # Wednesday, same file: every record is unchanged but the refused ones,
        # which are tried again (and refused again, on the same lines).
        k = counts("Staff", "2026-03-11")
        again = sorted((e["line"], e["district_id"]) for e in jobs[("Staff", "2026-03-11")]["exceptions"]
                       if e["outcome"] == "SKIP")
        assert again == skips, (again, skips)
        ok = s2 + 1 - len(skips)
        assert k["read"] == s2 + 1 and k["unchanged"] == ok and k["invalid_skipped"] == len(skips), k
        notes = jobs[("Staff", "2026-03-11")]["notes"]
        assert any(n.startswith(f"Incremental run: {ok} of {s2 + 1} records were unchanged") for n in notes), notes

        # The store is what a Full run of the file makes: a Full run now changes nothing.
        p = c.ctl("schedule", "run", "Staff", "--wait", "--json", check=False)
        full = json.loads(p.stdout)
        assert full["counts"]["read"] == s2 + 1 and full["counts"]["unchanged"] == ok, full["counts"]
        assert full["counts"]["added"] + full["counts"]["updated"] == 0, full["counts"]

        # Nothing else ran, nothing was missed.
        listed = {s["name"]: s for s in json.loads(c.ctl("schedule", "list", "--json").stdout)}
        assert listed["Students"]["missed"] == 0 and listed["Staff"]["missed"] == 0
        assert listed["Staff"]["last_run"]["state"] == "complete"
        all_jobs = [j["job_id"] for j in json.loads(c.ctl("jobs", "--json").stdout)]
        assert sorted(all_jobs) == sorted([f"{uid[n]}-{dt.replace('-', '')}" for _, n, dt, _ in slots] +
                                          [full["job_id"]]), all_jobs


@test
def broker_down_at_fire_time():
    start = utc(2026, 7, 1, 12)  # 08:00 EDT
    with SchedCluster("broker-down", start) as c:
        c.sites()
        with open(os.path.join(SAMPLE, "day1.csv"), "rb") as f, \
                open(os.path.join(c.data, "import", "all.csv"), "wb") as g:
            g.write(f.read())
        c.ctl("schedule", "add", "all", "--file", "all.csv", "--profile", PROFILE, "--time", "09:00", "--full", "daily")
        job = c.show("all")["id"] + "-20260701"
        c.kill("broker")
        c.clock.set(utc(2026, 7, 1, 13, 0, ) + 5)
        s = c.show("all")
        assert s["runs"][0]["job_id"] == job and s["runs"][0]["state"] == "pending", s["runs"]
        db = c.control_db()

        def sent_twice():
            r = db.execute("SELECT created_ms, last_sent_ms, acked_ms FROM outbox WHERE job_id=?", (job,)).fetchone()
            return r and r[2] is None and r[1] > r[0] + 150
        wait_for(sent_twice, "the request to be resent while the broker is down")
        c.start("broker")
        summ = c.summary(job)
        assert summ["state"] == "complete" and summ["counts"]["added"] == 3000, summ["counts"]
        wait_for(lambda: db.execute("SELECT acked_ms FROM outbox WHERE job_id=?", (job,)).fetchone()[0], "the ack")
        db.close()
        assert c.log("broker").count(f"job {job} accepted") == 1
        jobs = [j["job_id"] for j in json.loads(c.ctl("jobs", "--json").stdout)]
        assert jobs == [job], jobs


@test
def scheduler_killed_and_down():
    start = utc(2026, 10, 1, 12)  # 08:00 EDT
    with SchedCluster("sched-restart", start) as c:
        c.sites()
        with open(os.path.join(SAMPLE, "day1.csv"), "rb") as f, \
                open(os.path.join(c.data, "import", "all.csv"), "wb") as g:
            g.write(f.read())
        c.ctl("schedule", "add", "all", "--file", "all.csv", "--profile", PROFILE, "--time", "09:00", "--full", "daily")
        uid = c.show("all")["id"]
        db = c.control_db()
        # Killed right after the claim's commit, before sending.
        c.kill("scheduler", signal.SIGTERM)
        pid = c.start("scheduler", "--set", "test_fault_claim=2")
        c.clock.set(utc(2026, 10, 1, 13) + 5)
        c.wait_gone(pid, "scheduler (fault switch)")
        job = f"{uid}-20261001"
        assert f"killed after claiming job {job}, before sending it" in c.log("scheduler")
        rows = db.execute("SELECT local_date, state, job_id FROM slots").fetchall()
        assert rows == [("2026-10-01", "fired", job)], rows
        assert db.execute("SELECT last_sent_ms, acked_ms FROM outbox WHERE job_id=?", (job,)).fetchone() == (0, None)
        assert not os.path.exists(os.path.join(c.data, "work", job))
        c.start("scheduler")
        assert c.summary(job)["state"] == "complete"
        assert db.execute("SELECT count(*) FROM slots").fetchone()[0] == 1
        assert c.log("broker").count(f"job {job} accepted") == 1

        # Down across three slots; back 20 minutes after the third: it runs once, two are missed.
        c.kill("scheduler", signal.SIGTERM)
        c.clock.set(utc(2026, 10, 4, 13, 20))
        c.start("scheduler")
        s = c.show("all")
        assert s["missed"] == 2 and [m["local_date"] for m in s["missed_slots"]] == ["2026-10-03", "2026-10-02"], s
        assert [r["job_id"] for r in s["runs"]] == [f"{uid}-20261004", job], s["runs"]
        assert c.summary(f"{uid}-20261004")["counts"]["unchanged"] == 3000
        listing = c.ctl("schedule", "list").stdout
        assert re.search(r"^all\s+admin\s+complete \S+-20261004\s+2026-10-05 09:00 Full\s+2$", listing, re.M), listing
        db.close()


@test
def patronctl_schedule_verbs():
    start = utc(2026, 1, 12, 15)  # Monday 10:00 EST
    with SchedCluster("verbs", start) as c:
        c.sites()
        with open(os.path.join(SAMPLE, "day1.csv"), "rb") as f, \
                open(os.path.join(c.data, "import", "all.csv"), "wb") as g:
            g.write(f.read())
        bad = c.ctl("schedule", "add", "x", "--file", "all.csv", "--profile", PROFILE, "--time", "06:00",
                    "--full", "daily", "--min-records", "1000000", check=False)
        assert bad.returncode == 2 and bad.stderr.strip() == "patronctl: Patron records read must be between 0 and 999,999."
        bad = c.ctl("schedule", "add", "x", "--file", "all.csv", "--profile", PROFILE, "--time", "06:00",
                    "--full", "daily", "--days-before-inactivate", "1000", check=False)
        assert bad.stderr.strip() == "patronctl: Number of days before inactivating patrons must be between 0 and 999."
        out = c.ctl("schedule", "add", "Nightly", "--file", "all.csv", "--profile", PROFILE, "--time", "11:00 PM",
                    "--full", "mon-fri", "--incremental", "sat", "--errors-only", "--keep-jobs", "2",
                    "--inactivate-missing", "--min-records", "500", "--days-before-inactivate", "3").stdout
        assert "Full Mon-Fri; Incremental Sat at 23:00 (America/New_York)" in out, out
        assert "next run: 2026-01-12 23:00 -05:00 (Full)" in out, out
        s = c.show("nightly")
        assert s["options"]["errors_only"] and s["options"]["keep_jobs"] == 2 and s["options"]["min_records"] == 500
        assert s["created_by"] == "admin" and s["days"] == "NFFFFFI"
        assert c.ctl("schedule", "show", "Nightly", "--properties").stdout == open(PROFILE, encoding="utf-8").read()
        c.ctl("schedule", "disable", "Nightly")
        assert re.search(r"Nightly\s+admin\s+never\s+Disabled", c.ctl("schedule", "list").stdout)
        c.ctl("schedule", "enable", "Nightly")
        c.ctl("schedule", "edit", "Nightly", "--time", "22:15", "--none", "sat", "--name", "Weeknights")
        s = c.show("Weeknights")
        assert s["time"] == "22:15" and s["days"] == "NFFFFFN" and s["next_run"]["local"] == "2026-01-12T22:15:00-05:00"
        # Run now, then delete the schedule at once: the job is not disturbed.
        job = c.ctl("schedule", "run", "Weeknights", "--dry-run").stdout.strip()
        c.ctl("schedule", "delete", "Weeknights")
        summ = c.summary(job)
        assert summ["state"] == "complete" and summ["dry_run"] and summ["counts"]["added"] == 3000, summ
        assert c.ctl("schedule", "show", "Weeknights", check=False).returncode == 5
        assert c.ctl("schedule", "run", "nobody", check=False).stderr.strip() == "patronctl: no schedule named 'nobody'"
        assert c.ctl("schedule", "frobnicate", check=False).returncode == 2
        # Keep 2 previous jobs: the third run-now deletes the oldest finished one.
        c.ctl("schedule", "add", "keep", "--file", "all.csv", "--profile", PROFILE, "--time", "06:00", "--full", "daily",
              "--keep-jobs", "1")
        ids = []
        for _ in range(3):
            ids.append(c.ctl("schedule", "run", "keep").stdout.strip())
            c.summary(ids[-1])
        ids.append(c.ctl("schedule", "run", "keep").stdout.strip())
        c.summary(ids[-1])
        left = [j["job_id"] for j in json.loads(c.ctl("jobs", "--json").stdout) if j["job_id"] in ids]
        assert sorted(left) == sorted(ids[-2:]), (ids, left)
        assert c.ctl("job", "show", ids[0], check=False).returncode == 5


if __name__ == "__main__":
    main()
