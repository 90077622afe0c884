"""test_operations: live status and the Job Manager (issue 21) — progress
rising in job show --json while a large job runs, run --wait's progress
lines off a terminal, watch --once, the jobs list's columns and filters,
job show --errors-only/--level, job export (a CSV safe for spreadsheets),
job delete and jobs delete (never an unfinished or held job), health
failing per part and status with Redis down."""
import csv
import io
import json
import os
import re
import shutil
import signal
import subprocess
import time

from harness import BIN, Cluster, cluster_signal, district, generate, main, test, wait_gone, workdir

OK, FAILED, USAGE, HELD, NOT_FOUND = 0, 1, 2, 4, 5
PROGRESS_LINE = re.compile(r"^job (\S+): (prepare|queued|plan|apply|summary) \d+/\d+ shards, \d+/\d+ records, "
                           r"\d+/s, ETA (\d+ s|-)$")


def redis_cli(c, *args, **kw):
    """redis-cli as the cluster's ACL user; the password in its
    environment (REDISCLI_AUTH), never on an argument list."""
    port = next(int(ln.split()[1]) for ln in open(os.path.join(c.data, "run", "redis.conf")) if ln.startswith("port "))
    env = dict(os.environ, REDISCLI_AUTH=open(os.path.join(c.data, "keys", "redis.password")).read().strip())
    return ["redis-cli", "--user", "patronsync", "-p", str(port)] + list(args), env


def ctl(c, *args, timeout=120):
    return c.ctl(*args, check=False, timeout=timeout)


@test
def progress_rises_while_a_large_job_runs():
    d = workdir("ops-large-files")
    day1, prof, sites = district(d, 150000, 71)
    with Cluster("ops-large", workers=3, settings={"shard_size": "5000"}) as c:
        c.sites(sites)
        argv, env = redis_cli(c, "SUBSCRIBE", "ps:events:live")
        live = subprocess.Popen(argv, env=env, stdout=open(os.path.join(d, "live.out"), "w"),
                                stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        out, err = open(os.path.join(d, "run.out"), "w"), open(os.path.join(d, "run.err"), "w")
        run = subprocess.Popen([os.path.join(BIN, "patronctl"), "--data", c.data, "run", day1, "--profile", prof,
                                "--copy-in", "--wait", "--json"], stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        seen, frame, refused = [], None, None
        while run.poll() is None:
            jobs = json.loads(ctl(c, "jobs", "--json").stdout or "[]")
            if jobs:
                jid = jobs[0]["job_id"]
                s = json.loads(ctl(c, "job", "show", jid, "--json").stdout or "null")
                if s and s["state"] == "running":
                    seen.append(s)
                    if frame is None and s["progress"]["records_done"] > 0:
                        argv, env = redis_cli(c, "HGETALL", "ps:job:" + jid)
                        raw = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30).stdout.split("\n")[:-1]
                        raw = dict(zip(raw[::2], raw[1::2]))
                        frame = ctl(c, "watch", "--once", timeout=30)
                        refused = ctl(c, "job", "delete", jid)
            time.sleep(0.1)
        out.close()
        err.close()
        assert run.returncode == 0, run.returncode
        final = json.load(open(os.path.join(d, "run.out")))          # stdout: one JSON object
        assert final["state"] == "complete" and final["counts"]["read"] == 150000, final["counts"]
        plan = [s["progress"] for s in seen if s["progress"]["phase"] == "plan"]
        assert len(plan) >= 2, [s["progress"] for s in seen]
        for p in plan:
            assert set(p) == {"phase", "shards_done", "shards", "records_done", "records_total", "rate", "eta_s"}, p
            assert p["shards"] == 30 and p["records_total"] == 150000, p
        done = [p["records_done"] for p in plan]
        assert done == sorted(done) and done[-1] > done[0], done
        assert any(p["rate"] > 0 and p["eta_s"] is not None for p in plan), plan
        # the counts so far: summed from the shards published
        assert any(0 < s["counts"]["read"] < 150000 for s in seen), [s["counts"]["read"] for s in seen]
        assert final["progress"]["records_done"] == 150000 and final["progress"]["phase"] == "done"
        # in Redis: the progress fields of the job hash; events on the live channel
        assert int(raw["records_total"]) == 150000 and 0 < int(raw["records_done"]) <= 150000, raw
        assert {"rate", "eta_s", "shards_done", "progress_ms"} <= set(raw), raw
        end = time.time() + 10
        while f"job {final['job_id']} complete" not in open(os.path.join(d, "live.out")).read() and time.time() < end:
            time.sleep(0.1)
        live.terminate()
        live.wait()
        events = open(os.path.join(d, "live.out")).read()
        assert f"progress {final['job_id']} plan" in events and f"job {final['job_id']} complete" in events, events
        # run --wait off a terminal: plain progress lines on stderr
        lines = open(os.path.join(d, "run.err")).read().splitlines()
        assert lines and all(PROGRESS_LINE.match(ln) for ln in lines), lines
        assert PROGRESS_LINE.match(lines[0]).group(1) == final["job_id"]
        # watch --once while it ran: the job with its bar, the workers
        assert frame is not None and frame.returncode == 0, frame
        assert final["job_id"] in frame.stdout and "JOBS" in frame.stdout and "WORKERS" in frame.stdout
        assert re.search(r"\[[#-]{24}\] +\d+%", frame.stdout), frame.stdout
        assert "worker-1" in frame.stdout and "NEXT SCHEDULED RUNS" in frame.stdout
        # a running job is never deleted
        assert refused.returncode == USAGE and "only a finished job is deleted" in refused.stderr, refused
        assert ctl(c, "job", "show", final["job_id"]).returncode == 0


def crafted(d):
    """A small district whose rows at a site that does not exist carry last
    names a spreadsheet would run as formulas: SKIP lines with them."""
    day1, prof, sites = district(d, 2000, 72)
    with open(day1, encoding="cp1252", newline="") as f:
        rows = list(csv.reader(f))
    head = rows[0]
    last, site = head.index("last_name"), head.index("site")
    evil = ['=HYPERLINK("http://evil.example","x")', "+1", "-2", "@SUM(A1)"]
    for k, name in enumerate(evil):
        rows[1 + k][last] = name
        rows[1 + k][site] = "NOPE"
    text = io.StringIO()
    csv.writer(text, lineterminator="\r\n").writerows(rows)
    path = os.path.join(d, "crafted.csv")
    open(path, "w", encoding="cp1252", newline="").write(text.getvalue())
    return path, prof, sites, evil


@test
def the_job_manager_lists_filters_exports_and_deletes():
    d = workdir("ops-manager-files")
    path, prof, sites, evil = crafted(d)
    with Cluster("ops-manager", workers=2) as c:
        c.sites(sites)
        s = c.run(path, prof, expect_exit=0)
        jid = s["job_id"]
        skips = [e for e in s["exceptions"] if e["outcome"] == "SKIP"]
        assert all(any(e["name"].startswith(n + ",") for e in skips) for n in evil), skips
        dry = c.run(path, prof, "--dry-run", expect_exit=0)["job_id"]
        # jobs: the Job Manager's columns (STATE STARTED RECORDS FILE kept last)
        text = ctl(c, "jobs").stdout
        head = text.splitlines()[0].split()
        for col in ("JOB", "NAME", "SUBMITTED", "STATUS", "PROGRESS", "ADDED", "UPDATED", "INACTIVATED", "ERRORS",
                    "DURATION", "STATE", "STARTED", "RECORDS", "FILE"):
            assert col in head, head
        assert "Complete" in text and "Dry run" in text, text
        jobs = json.loads(ctl(c, "jobs", "--json").stdout)
        byid = {j["job_id"]: j for j in jobs}
        j = byid[jid]
        assert j["state"] == "complete" and j["status"] == "Complete" and j["status_key"] == "complete", j
        assert j["submitted_by"] == "admin" and j["name"] == j["file"] and j["read"] == 2000, j
        assert j["counts"]["added"] == s["counts"]["added"] and j["counts"]["errors"] == s["counts"]["invalid_skipped"]
        assert j["duration_ms"] >= 0 and j["progress"]["phase"] == "done", j
        assert byid[dry]["status"] == "Dry run" and byid[dry]["status_key"] == "dry_run"
        # filters
        ids = lambda *a: [x["job_id"] for x in json.loads(ctl(c, "jobs", "--json", *a).stdout)]
        assert ids("--state", "Dry run") == [dry]
        assert ids("--state", "Complete") == [jid] and ids("--state", "complete_with_errors") == []
        assert ids("--state", "failed") == [] and ids("--schedule", "nightly") == []
        assert set(ids("--since", "1d")) == {jid, dry} and ids("--until", "2000-01-01") == []
        assert ctl(c, "jobs", "--since", "yesterday-ish").returncode == USAGE
        # job show --errors-only / --level
        full = json.loads(ctl(c, "job", "show", jid, "--json").stdout)["exceptions"]
        eo = json.loads(ctl(c, "job", "show", jid, "--json", "--errors-only").stdout)["exceptions"]
        er = json.loads(ctl(c, "job", "show", jid, "--json", "--level", "error").stdout)["exceptions"]
        assert eo and all(e["outcome"] != "INFO" for e in eo) and len(eo) == len([e for e in full if e["outcome"] != "INFO"])
        assert er and all(e["outcome"] == "SKIP" for e in er), er
        t = ctl(c, "job", "show", jid, "--errors-only").stdout
        assert " INFO " not in t and " SKIP " in t
        assert ctl(c, "job", "show", jid, "--level", "loud").returncode == USAGE
        # export: CSV cells a spreadsheet would run are neutralised
        out = os.path.join(d, "lines.csv")
        p = ctl(c, "job", "export", jid, "--csv", out)
        assert p.returncode == 0 and out in p.stdout, p
        rows = list(csv.reader(open(out, encoding="utf-8", newline="")))
        assert rows[0] == ["Line", "District ID", "Name", "Outcome", "Message"] and len(rows) == len(full) + 1
        names = [r[2] for r in rows[1:]]
        for name in evil:
            assert any(n.startswith("'" + name) for n in names), (name, names[:10])
        assert not any(cell[:1] in ("=", "+", "-", "@", "\t", "\r") for r in rows[1:] for cell in r), rows[:8]
        ej = os.path.join(d, "summary.json")
        assert ctl(c, "job", "export", jid, "--json", ej, "--errors-only").returncode == 0
        assert json.load(open(ej))["exceptions"] == eo
        assert ctl(c, "job", "export", jid).returncode == USAGE
        assert ctl(c, "job", "export", "nosuch", "--csv", out).returncode == NOT_FOUND
        # watch --once: the next run of a schedule (from ps:schedules)
        os.makedirs(os.path.join(c.data, "import"), exist_ok=True)
        shutil.copy(path, os.path.join(c.data, "import", "nightly.csv"))
        c.ctl("schedule", "add", "nightly", "--file", "nightly.csv", "--profile", prof, "--time", "23:00",
              "--full", "daily")
        end = time.time() + 10
        while "nightly" not in ctl(c, "watch", "--once").stdout and time.time() < end:
            time.sleep(0.2)
        frame = ctl(c, "watch", "--once").stdout
        assert re.search(r"NEXT SCHEDULED RUNS\n  nightly +\S+T23:00:00\S* +Full", frame), frame
        assert "(no job running or queued)" in frame and ctl(c, "watch", jid, "--once").stdout.count(jid) >= 1
        # a held job: never deleted; a finished one is, with what was removed said
        d2 = workdir("ops-manager-more")
        more = generate(os.path.join(d2, "more.csv"), 400, 73)
        held = c.run(more, prof, "--max-add-pct", "1", expect_exit=HELD)["job_id"]
        p = ctl(c, "job", "delete", held)
        assert p.returncode == USAGE and "held" in p.stderr, p
        p = ctl(c, "job", "delete", dry)
        assert p.returncode == 0 and "deleted" in p.stdout and "keys" in p.stdout, p
        assert ctl(c, "job", "show", dry).returncode == NOT_FOUND
        assert ctl(c, "job", "delete", dry).returncode == NOT_FOUND
        p = ctl(c, "jobs", "delete", "--before", "2100-01-01", "--json")
        r = json.loads(p.stdout)
        assert r["deleted"] == [jid] and r["kept"] == [held] and r["keys_removed"] > 0, r
        assert ids() == [held]
        assert ctl(c, "jobs", "delete").returncode == USAGE


@test
def health_fails_per_part_and_status_works_without_redis():
    with Cluster("ops-health", workers=1) as c:
        p = ctl(c, "health")
        assert p.returncode == OK, p.stdout + p.stderr
        assert [ln.split()[:2] for ln in p.stdout.splitlines()] == [
            ["redis", "ok"], ["scheduler", "ok"], ["broker", "ok"], ["workers", "ok"]], p.stdout
        st = json.loads(ctl(c, "status", "--json").stdout)
        names = {x["name"]: x for x in st["processes"]}
        assert names["broker"]["running"] and names["broker"]["uptime_s"] >= 0 and names["broker"]["log"], names
        assert st["redis"]["up"] and st["store"]["bytes"] > 0 and "worker-1" in st["workers"], st
        wait_gone(cluster_signal(c, "broker", signal.SIGKILL))
        p = ctl(c, "health", "--json")
        h = {x["part"]: x for x in json.loads(p.stdout)["parts"]}
        assert p.returncode == FAILED and not h["broker"]["ok"] and not h["workers"]["ok"], h
        assert h["redis"]["ok"] and h["scheduler"]["ok"] and "does not answer" in h["broker"]["reason"], h
        wait_gone(cluster_signal(c, "redis", signal.SIGKILL))
        p = ctl(c, "status", timeout=30)
        assert p.returncode == OK, p.stderr
        assert "Redis: NOT reachable" in p.stdout and "broker not running" in p.stdout, p.stdout
        assert re.search(r"scheduler running \(pid \d+, up \d+s\)", p.stdout), p.stdout
        st = json.loads(ctl(c, "status", "--json").stdout)
        assert st["redis"]["up"] is False and st["workers"] == {}, st
        wait_gone(cluster_signal(c, "scheduler", signal.SIGKILL))
        p = ctl(c, "health")
        assert p.returncode == FAILED
        bad = {ln.split()[0] for ln in p.stdout.splitlines() if ln.split()[1] == "FAILED"}
        assert bad == {"redis", "scheduler", "broker", "workers"}, p.stdout


if __name__ == "__main__":
    main()
