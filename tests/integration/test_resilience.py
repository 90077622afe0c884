"""test_resilience: what keeps a fault or a mistake from taking the cluster
down (issue 20) — one scheduler and one broker per data folder."""
import json
import os
import shutil
import signal
import subprocess
import time

from harness import (BIN, Cluster, cluster_pid, cluster_restart, cluster_signal, district, main, test, wait_gone,
                     workdir)

_files = {}


def files():
    if not _files:
        day1, prof, sites = district(workdir("resilience-files"), 3000, 31, "p.properties")
        _files.update(day1=day1, prof=prof, sites=sites)
    return _files


def second(c, exe):
    """Start a second copy of a daemon on the cluster's data folder."""
    return subprocess.run([os.path.join(BIN, exe), "--data", c.data, "--set", "control_endpoint=tcp://127.0.0.1:0",
                           "--set", "jobs_endpoint=tcp://127.0.0.1:0", "--set", "workers_endpoint=tcp://127.0.0.1:0"],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


@test
def a_second_scheduler_or_broker_on_one_data_folder_is_refused():
    with Cluster("single-instance", workers=1) as c:
        endpoints = {n: open(os.path.join(c.data, "run", f"{n}.endpoint")).read()
                     for n in ("control", "jobs", "workers")}
        pids = {n: cluster_pid(c, n) for n in ("scheduler", "broker")}
        for exe, name in (("patron-scheduler", "scheduler"), ("patron-broker", "broker")):
            p = second(c, exe)
            assert p.returncode == 1, f"a second {name} exited {p.returncode}: {p.stderr}"
            assert f"another {name} (pid {pids[name]}) already runs on the data folder" in p.stderr, p.stderr
        # Nothing of the running cluster was touched: its endpoints, its processes, its answers.
        for n, e in endpoints.items():
            assert open(os.path.join(c.data, "run", f"{n}.endpoint")).read() == e, f"{n}.endpoint was rewritten"
        assert {n: cluster_pid(c, n) for n in ("scheduler", "broker")} == pids
        c.ctl("jobs")
        c.ctl("ref", "list")


@test
def a_killed_scheduler_and_broker_leave_no_stale_lock():
    with Cluster("stale-lock", workers=1) as c:
        for name in ("scheduler", "broker"):
            wait_gone(cluster_signal(c, name, signal.SIGKILL))
        c.ctl("down")
        assert os.path.exists(os.path.join(c.data, "run", "broker.lock"))
        c.ctl("up", "--workers", 1)
        c.ctl("ref", "list")
        for name in ("scheduler", "broker"):
            pid = cluster_pid(c, name)
            assert open(os.path.join(c.data, "run", f"{name}.lock")).read().strip() == str(pid)


def over_a_limit(name, kind, limit):
    """A record that makes its planner spin or take memory without end (a
    test-only switch, as a runaway pattern would): each attempt's process is
    ended at its limit and counted as a failed attempt; the shard fails, the
    job ends complete_with_errors, every other shard
    is applied, and the workers live on."""
    f = files()
    settings = {"test_fault_line": "1700", "test_fault_kind": kind, "max_attempts": "2", "shard_size": "500"}
    settings.update(limit)
    with Cluster(name, workers=2, settings=settings) as c:
        c.sites(f["sites"])
        s = c.run(f["day1"], f["prof"], expect_exit=3)
        assert s["state"] == "complete_with_errors", s["state"]
        assert s["shards_failed"] == 1, s
        assert s["counts"]["added"] >= 3000 - 500 - 10, s["counts"]
        for name in ("worker-1", "worker-2"):
            assert cluster_pid(c, name), f"{name} died with its task"
        logs = "".join(open(os.path.join(c.data, "logs", f"worker-{i}.log"), errors="replace").read() for i in (1, 2))
        return s, logs


@test
def a_task_past_its_cpu_time_is_ended_and_reported():
    s, _ = over_a_limit("limit-cpu", "cpu", {"task_cpu_seconds": "2"})
    assert any("CPU time limit (task_cpu_seconds=2)" in n for n in s["notes"]), s["notes"]


@test
def a_task_past_its_memory_is_ended_and_reported():
    s, logs = over_a_limit("limit-memory", "memory", {"task_memory_mb": "300"})
    assert any("memory limit" in n and "task_memory_mb=300" in n for n in s["notes"]), s["notes"]
    assert "past task_memory_mb=300; ending it" in logs


def job_in_flight(c, timeout=60):
    """The id of the job the broker has in its work folder, not done, once it runs."""
    end = time.time() + timeout
    work = os.path.join(c.data, "work")
    while time.time() < end:
        for jid in os.listdir(work) if os.path.isdir(work) else []:
            if not os.path.exists(os.path.join(work, jid, "done")):
                st = c.ctl("job", "show", jid, "--json", check=False)
                if st.stdout.strip() and json.loads(st.stdout).get("state") == "running":
                    return jid
        time.sleep(0.05)
    raise AssertionError("no job came to run")


def in_import(c, path):
    """A copy of path in the cluster's import root, where a run-now reads it in place."""
    dst = os.path.join(c.data, "import", os.path.basename(path))
    shutil.copyfile(path, dst)
    return dst


def slow_cluster(name):
    # Each shard's write waits 1 s: the job is in flight for ~6 s at least.
    return Cluster(name, workers=2, settings={"shard_size": "500", "test_apply_delay_ms": "1000",
                                              "poison_starts": "2"})


@test
def a_job_in_flight_at_each_crash_of_the_broker_is_quarantined_not_resumed():
    f = files()
    with slow_cluster("poison-starts") as c:
        c.sites(f["sites"])
        run = subprocess.Popen([os.path.join(BIN, "patronctl"), "--data", c.data, "run", in_import(c, f["day1"]),
                                "--profile", f["prof"], "--wait", "--json"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        jid = job_in_flight(c)
        for start in (1, 2):
            wait_gone(cluster_signal(c, "broker", signal.SIGKILL))
            cluster_restart(c, "broker")
            # The new broker has taken the job up again (and counted this start).
            starts = os.path.join(c.data, "work", jid, "starts")
            end = time.time() + 60
            while not (os.path.exists(starts) and open(starts).read().strip() == str(start)):
                assert time.time() < end, "the restarted broker never took the job up"
                time.sleep(0.02)
            if start == 1:
                assert job_in_flight(c) == jid  # resumed after the first crash
        out, err = run.communicate(timeout=300)
        assert run.returncode == 1, f"exit {run.returncode}: {err}"
        s = json.loads(out)
        assert s["state"] == "failed", s["state"]
        assert "quarantined" in s["error"] and "last 2 broker starts" in s["error"], s["error"]
        assert s["counts"]["added"] == 0 and s["counts"]["updated"] == 0, s["counts"]
        # The cluster goes on: the same file again runs to its end.
        s2 = c.run(f["day1"], f["prof"], expect_exit=0)
        assert s2["state"] == "complete" and s2["counts"]["added"] == 3000, s2["counts"]


@test
def a_clean_stop_does_not_count_toward_quarantine():
    f = files()
    with slow_cluster("poison-clean-stops") as c:
        c.sites(f["sites"])
        c.ctl("run", in_import(c, f["day1"]), "--profile", f["prof"])
        jid = job_in_flight(c)
        for _ in range(3):
            c.ctl("down")
            c.ctl("up", "--workers", 2)
            assert not os.path.exists(os.path.join(c.data, "work", jid, "starts")) or \
                open(os.path.join(c.data, "work", jid, "starts")).read().strip() == "1"
        s = json.loads(c.ctl("job", "show", jid, "--json", "--wait").stdout)
        assert s["state"] == "complete", f"{s['state']}: {s.get('error')}"
        assert s["counts"]["added"] == 3000, s["counts"]


@test
def a_job_that_fails_before_its_apply_says_nothing_was_changed():
    """The watchdog ends a job whose apply is slow: its shards were planned
    (3,000 additions) but nothing was applied, and the summary says so."""
    f = files()
    settings = {"shard_size": "500", "test_apply_delay_ms": "3000", "job_deadline_seconds": "2"}
    with Cluster("fail-honest", workers=2, settings=settings) as c:
        c.sites(f["sites"])
        s = c.run(f["day1"], f["prof"], expect_exit=1)
        assert s["state"] == "failed" and "watchdog" in s["error"], (s["state"], s["error"])
        assert all(v == 0 for k, v in s["counts"].items() if k != "read"), s["counts"]
        assert s["counts"]["read"] == 3000, s["counts"]
        assert any(n.startswith("Nothing was changed") and "planned" in n for n in s["notes"]), s["notes"]
        assert c.db().execute("SELECT count(*) FROM patrons").fetchone()[0] == 0
        text = c.ctl("job", "show", s["job_id"], check=False).stdout
        assert "Nothing was changed" in text, text[:2000]


# ^(a+)+\1$: cubic (or worse) backtracking, as the issue measured; written
# as a profile writes it (a backslash pair inside the quotes)
CATASTROPHIC = r"^(a+)+\\1$"


def with_runaway_value(src, dst, col, line_no):
    """src with column col (0-based) of its line_no-th CRLF-ended piece a
    30,000-character value that almost matches CATASTROPHIC; the file, and
    the line the record starts on."""
    rows = open(src, "rb").read().split(b"\r\n")
    cells = rows[line_no - 1].split(b",")
    cells[col] = b"a" * 29999 + b"b"
    rows[line_no - 1] = b",".join(cells)
    data = b"\r\n".join(rows)
    open(dst, "wb").write(data)
    # the line the summary names (records before it may hold line breaks)
    return dst, data[:data.index(b"a" * 29999)].count(b"\n") + 1


def runaway_profile(src, dst, key, col):
    text = open(src, encoding="utf-8").read()
    line = f"{key}={{{col + 1}}}"
    assert line in text, line
    open(dst, "w", encoding="utf-8").write(text.replace(line, f'{key}={{{col + 1},regex("{CATASTROPHIC}","x")}}'))
    return dst


@test
def a_runaway_pattern_ends_as_an_error_on_its_record_and_the_cluster_answers():
    """The backreference pattern on the District ID (which the broker reads
    for the match key) and on a last name, with one 30,000-character value:
    the record is skipped with the field named, every other record is done,
    the broker answers throughout, profile check warns, down/up comes up and
    nothing is resumed."""
    f = files()
    d = workdir("runaway-pattern")
    with Cluster("runaway", workers=2, settings={"shard_size": "500"}) as c:
        c.sites(f["sites"])
        for key, col, line_no in (("field_districtID", 0, 1200), ("field_lastName", 2, 2400)):
            prof = runaway_profile(f["prof"], os.path.join(d, f"{key}.properties"), key, col)
            check = c.ctl("profile", "check", prof, check=False)
            assert check.returncode == 0, check.stdout + check.stderr
            assert f'warning: {key}: regex "^(a+)+\\1$": a repeated group holds a repeat of its own' \
                in check.stdout and "power of its length" in check.stdout, check.stdout
            data, line_no = with_runaway_value(f["day1"], os.path.join(d, f"{key}.csv"), col, line_no)
            out_path = os.path.join(d, f"{key}.json")
            out_file = open(out_path, "w")   # a file, not a pipe: the summary is larger than a pipe holds
            run = subprocess.Popen([os.path.join(BIN, "patronctl"), "--data", c.data, "run", in_import(c, data),
                                    "--profile", prof, "--wait", "--json"], stdout=out_file,
                                   stderr=subprocess.PIPE, text=True)
            # While it runs, the broker and the scheduler answer (up on a
            # running cluster pings each part and changes nothing).
            while run.poll() is None:
                up = c.ctl("up", "--workers", 2, check=False, timeout=30)
                assert up.returncode == 0, up.stdout + up.stderr
                time.sleep(0.2)
            _, err = run.communicate(timeout=30)
            out_file.close()
            s = json.loads(open(out_path).read())
            assert run.returncode in (0, 3), f"exit {run.returncode}: {err}"
            skips = [e for e in s["exceptions"] if e["line"] == line_no]
            assert skips and f"{key}: regular expression gave up on a value of 30000 bytes" in skips[0]["message"], \
                skips or s["exceptions"][:5]
            assert s["counts"]["invalid_skipped"] >= 1, s["counts"]
            done = s["counts"]["added"] + s["counts"]["updated"] + s["counts"]["unchanged"]
            assert done >= 3000 - 2, s["counts"]
        c.ctl("down")
        c.ctl("up", "--workers", 2)
        jobs = json.loads(c.ctl("jobs", "--json").stdout)
        assert all(j["state"] != "running" for j in jobs), jobs


@test
def a_job_submitted_while_another_file_settles_finishes_first():
    """A file still being written waits alone: its preparation runs beside
    the broker's loop, so a job submitted after it (another file) is
    prepared, planned and applied meanwhile and ends first; the broker
    answers throughout; the written file is read once it is still."""
    f = files()
    with Cluster("settle-alone", workers=2, settings={"settle_seconds": "2", "settle_timeout_seconds": "60"}) as c:
        c.sites(f["sites"])
        rows = open(f["day1"], "rb").read().split(b"\r\n")
        header, body = rows[0], [r for r in rows[1:] if r]
        growing = os.path.join(c.data, "import", "growing.csv")
        with open(growing, "wb") as out:
            out.write(header + b"\r\n")
        # The export goes on for ~8 s: a few records every 0.4 s.
        writer = subprocess.Popen(["python3", "-c", f"""
import time
rows = open({f["day1"]!r}, "rb").read().split(b"\\r\\n")[1:]
rows = [r for r in rows if r][:1000]
with open({growing!r}, "ab") as out:
    for i in range(0, len(rows), 50):
        out.write(b"\\r\\n".join(rows[i:i + 50]) + b"\\r\\n"); out.flush(); time.sleep(0.4)
"""])
        slow = subprocess.Popen([os.path.join(BIN, "patronctl"), "--data", c.data, "run", growing, "--profile",
                                 f["prof"], "--wait", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        time.sleep(1.0)
        small = os.path.join(c.data, "import", "small.csv")
        with open(small, "wb") as out:
            out.write(header + b"\r\n" + b"\r\n".join(body[1000:1200]) + b"\r\n")
        os.utime(small, (time.time() - 10, time.time() - 10))  # written and still
        t0 = time.time()
        quick = c.ctl("run", small, "--profile", f["prof"], "--wait", "--json", timeout=120)
        quick_s = json.loads(quick.stdout)
        assert quick_s["state"] == "complete", quick_s
        assert quick_s["counts"]["read"] == 200, quick_s["counts"]
        assert writer.poll() is None and slow.poll() is None, \
            "the small job did not end while the other file was still being written"
        up = c.ctl("up", "--workers", 2, check=False, timeout=30)
        assert up.returncode == 0 and time.time() - t0 < 8, up.stdout + up.stderr
        writer.wait(timeout=60)
        out, err = slow.communicate(timeout=120)
        s = json.loads(out)
        assert s["state"] == "complete", s
        assert s["counts"]["read"] == 1000, s["counts"]
        assert int(s["finished_ms"]) > int(quick_s["finished_ms"]), (s["finished_ms"], quick_s["finished_ms"])


def disk_used(path):
    total = 0
    for top, _, names in os.walk(path):
        for n in names:
            try:
                total += os.lstat(os.path.join(top, n)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total


def peak_rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@test
def a_sparse_file_is_refused_before_any_copy():
    """A 2 GB sparse file in the import root: refused as sparse before the
    archive copy or the conversion; the data folder and the broker's memory
    stay small."""
    f = files()
    with Cluster("sparse", workers=1) as c:
        c.sites(f["sites"])
        big = os.path.join(c.data, "import", "huge.csv")
        with open(big, "wb") as out:
            out.write(b"district_id,last_name\r\n")
            out.truncate(2 * 1024 ** 3)
        used0 = disk_used(c.data)
        p = c.ctl("run", big, "--profile", f["prof"], "--wait", "--json", check=False)
        assert p.returncode == 1, p.stderr + p.stdout[:500]
        s = json.loads(p.stdout)
        assert s["state"] == "failed" and "is a sparse file (2147483648 bytes long" in s["error"], s["error"]
        assert "not a text export; not read" in s["error"], s["error"]
        grown = disk_used(c.data) - used0
        assert grown < 64 * 1024 ** 2, f"the data folder grew by {grown} bytes"
        rss = peak_rss_kb(cluster_pid(c, "broker"))
        assert rss < 512 * 1024, f"the broker's peak memory was {rss} kB"
        # the next file runs as ever
        assert c.run(f["day1"], f["prof"], expect_exit=0)["counts"]["added"] == 3000


if __name__ == "__main__":
    main()
