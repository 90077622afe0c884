"""Patrons who left, and safety against mass changes (issue 6): missing
patrons inactivated within the scope only; a short file held with nothing
changed, then approved (exactly the preview) or discarded; empty and
header-only files; the grace days across simulated days, deletion and
outstanding transactions; a dry run that changes nothing; undo back to the
exact store. docs/SAFETY.md."""
import csv
import datetime
import json
import os
import re
import sqlite3
import time

from harness import Cluster, SAMPLE, main, summary_key, test, workdir

PROFILE = os.path.join(SAMPLE, "students.properties")
DAY1 = os.path.join(SAMPLE, "day1.csv")
DAY2 = os.path.join(SAMPLE, "day2.csv")
HELD = 4  # patronctl's exit status for a held job


def read_rows(path):
    with open(path, encoding="cp1252", newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def write_rows(path, header, rows):
    with open(path, "w", encoding="cp1252", newline="") as f:
        w = csv.writer(f, lineterminator="\r\n")
        if header is not None:
            w.writerow(header)
        w.writerows(rows)
    return path


def site_map():
    """School number in the file -> site short name in the store."""
    m = {}
    for line in open(PROFILE, encoding="utf-8"):
        if line.startswith("map_site_"):
            k, v = line.strip()[len("map_site_"):].split("=", 1)
            m[k] = v
    return m


def patrons(c):
    """district_id -> (status, missing_since, homeroom, site) as stored."""
    con = c.db()
    rows = con.execute("SELECT district_id,status,missing_since,homeroom,site_short_name FROM patrons").fetchall()
    con.close()
    return {r[0]: r[1:] for r in rows}


def lines(s, outcome=None, contains=""):
    return [e for e in s["exceptions"] if (outcome is None or e["outcome"] == outcome) and contains in e["message"]]


def ids(es):
    return sorted(e["district_id"] for e in es)


def audit(c):
    con = sqlite3.connect(os.path.join(c.data, "control.db"))
    rows = con.execute("SELECT user,verb,detail,ts_ms FROM audit").fetchall()
    con.close()
    return rows


@test
def normal_day_inactivates_exactly_the_missing_in_scope():
    d = workdir("files-safety-normal")
    header, rows = read_rows(DAY1)
    sites = site_map()
    # Leave out every row of one school (its patrons are outside the scope
    # "sites in the file") and 30 rows spread over the others.
    gone_site_code = rows[0][8]
    kept = [r for r in rows if r[8] != gone_site_code]
    left = kept[5::97][:30]
    left_ids = {r[0] for r in left}
    day = write_rows(os.path.join(d, "normal.csv"), header, [r for r in kept if r[0] not in left_ids])
    with Cluster("safety-normal", workers=3, settings={"shard_size": "700"}) as c:
        c.sites()
        assert c.run(DAY1, PROFILE)["state"] == "complete"
        before = patrons(c)
        s = c.run(day, PROFILE, "--inactivate-missing", "--inactive-homeroom", "Left the district")
        assert s["state"] == "complete", s
        assert s["counts"]["inactivated"] == len(left_ids), s["counts"]
        assert s["counts"]["unchanged"] == len(kept) - len(left_ids), s["counts"]
        got = lines(s, "INFO", "Patron inactivated; missing from the file since")
        assert set(ids(got)) == left_ids, (len(got), sorted(left_ids)[:5])
        after = patrons(c)
        changed = {k for k in before if after[k] != before[k]}
        assert changed == left_ids, sorted(changed ^ left_ids)[:10]
        for k in left_ids:
            status, since, homeroom, _ = after[k]
            assert status == "I" and since and homeroom == "Left the district", after[k]
        out_of_scope = [k for k, v in before.items() if v[3] == sites[gone_site_code]]
        assert out_of_scope and all(after[k] == before[k] for k in out_of_scope)

        # Listed scope: one other school, students only.
        header2, rows2 = read_rows(day)
        target = sites[left[0][8]]
        code = left[0][8]
        again = [r for r in rows2 if not (r[8] == code)]   # that school's remaining rows leave too
        day_b = write_rows(os.path.join(d, "normal-b.csv"), header2, again)
        before = patrons(c)
        s = c.run(day_b, PROFILE, "--inactivate-missing", "--scope-sites", target, "--scope-types", "Student",
                  "--no-thresholds")
        expect = {k for k, v in before.items() if v[3] == target and v[0] == "A"}
        con = c.db()
        types = dict(con.execute("SELECT district_id, patron_type FROM patrons").fetchall())
        con.close()
        expect = {k for k in expect if types[k] == "Student"}
        assert expect and s["counts"]["inactivated"] == len(expect), (s["counts"], len(expect))
        after = patrons(c)
        assert {k for k in before if after[k] != before[k]} == expect


def run_now_copy(c, job):
    """The job's input in import/adhoc/ (patronctl run's copy): the file the
    job's archived copy is a hard link to, or None."""
    arch = os.path.join(c.data, "archive", "adhoc")
    kept = [n for n in os.listdir(arch) if job in n]
    if len(kept) != 1:
        return None
    ino = os.stat(os.path.join(arch, kept[0])).st_ino
    adhoc = os.path.join(c.data, "import", "adhoc")
    same = [os.path.join(adhoc, n) for n in os.listdir(adhoc) if os.stat(os.path.join(adhoc, n)).st_ino == ino]
    return same[0] if len(same) == 1 else None


def gone_soon(path):
    deadline = time.time() + 10
    while os.path.exists(path) and time.time() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(path), path


def short_file(d, name, keep_every=10, change=()):
    """A truncated export: every keep_every-th row of day 1; the District
    IDs in `change` get a new grade."""
    header, rows = read_rows(DAY1)
    part = rows[::keep_every]
    for r in part:
        if r[0] in change:
            r[10] = "12" if r[10] != "12" else "11"
    return write_rows(os.path.join(d, name), header, part), part


@test
def short_file_is_held_then_approved_or_discarded():
    d = workdir("files-safety-held")
    header, rows = read_rows(DAY1)
    changed = {rows[0][0], rows[10][0]}
    short, part = short_file(d, "short.csv", change=changed)
    with Cluster("safety-held", workers=3, settings={"shard_size": "100"}) as c:
        c.sites()
        c.run(DAY1, PROFILE)
        dump0 = c.dump()
        s = c.run(short, PROFILE, "--inactivate-missing", expect_exit=HELD)
        job = s["job_id"]
        assert s["state"] == "held", s["state"]
        assert "Patrons removed (inactivated or deleted) would be" in s["held_reason"], s["held_reason"]
        assert "more than the limit of 10%" in s["held_reason"], s["held_reason"]
        assert c.dump() == dump0, "a held job changed the store"
        # Its run-now copy in import/adhoc/ stays while it is held (the
        # archive's copy is a link to that very file), and goes when it ends.
        held_copy = run_now_copy(c, job)
        assert held_copy is not None, os.listdir(os.path.join(c.data, "import", "adhoc"))
        would_inact = ids(lines(s, "PREVIEW", "Would be inactivated"))
        would_upd = ids(lines(s, "PREVIEW", "Would be updated"))
        file_sites = {site_map()[r[8]] for r in part}
        in_scope = {k for k, v in patrons(c).items() if v[3] in file_sites}
        assert would_inact == sorted(in_scope - {r[0] for r in part}), len(would_inact)
        assert len(would_inact) == s["counts"]["inactivated"], s["counts"]
        assert would_upd == sorted(changed), would_upd
        assert any("patronctl job approve" in n for n in s["notes"]), s["notes"]
        text = c.ctl("job", "show", job, check=False).stdout
        assert "Held: Patrons removed" in text and "Would be inactivated" in text, text[:2000]

        # A held job does not block the queue.
        nxt = c.run(DAY1, PROFILE)
        assert nxt["state"] == "complete", nxt
        assert c.dump() == dump0

        # Approve: exactly the preview.
        p = c.ctl("job", "approve", job, "--wait", "--json", check=False)
        assert p.returncode == 0, p.stderr + p.stdout[:2000]
        a = json.loads(p.stdout)
        assert a["state"] == "complete", a["state"]
        for k in ("inactivated", "updated", "added", "deleted"):
            assert a["counts"][k] == s["counts"][k], (k, a["counts"], s["counts"])
        assert ids(lines(a, "INFO", "Patron inactivated")) == would_inact
        after = patrons(c)
        assert sorted(k for k, v in after.items() if v[0] == "I") == would_inact
        assert any("approved by admin" in n for n in a["notes"]), a["notes"]
        gone_soon(held_copy)
        again = c.ctl("job", "approve", job, check=False)
        assert again.returncode != 0 and "not held" in again.stderr, again.stderr

        # Undo the approved job: back to the store before it.
        u = c.ctl("job", "undo", job, check=False)
        assert u.returncode == 0, u.stderr
        assert c.dump() == dump0

        # Held again; meanwhile another job changes two of the patrons it
        # would touch; the approval re-checks and says so.
        s2 = c.run(short, PROFILE, "--inactivate-missing", expect_exit=HELD)
        job2 = s2["job_id"]
        victim_upd = sorted(changed)[0]
        victim_inact = ids(lines(s2, "PREVIEW", "Would be inactivated"))[0]
        meddle = [r for r in rows if r[0] in (victim_upd, victim_inact)]
        for r in meddle:
            r[9] = "Room 999"
        c.run(write_rows(os.path.join(d, "meddle.csv"), header, meddle), PROFILE)
        a2 = json.loads(c.ctl("job", "approve", job2, "--wait", "--json").stdout)
        assert a2["state"] == "complete", a2
        assert any("The store changed after the preview" in n for n in a2["notes"]), a2["notes"]
        skipped = ids(lines(a2, "SKIP"))
        assert victim_upd in skipped and victim_inact in skipped, skipped[:10]
        assert a2["counts"]["inactivated"] == s2["counts"]["inactivated"] - 1
        assert patrons(c)[victim_inact][0] == "A"

        # Discard: nothing changes, the job ends discarded.
        c.ctl("job", "undo", job2)
        dump1 = c.dump()
        s3 = c.run(short, PROFILE, "--inactivate-missing", expect_exit=HELD)
        job3 = s3["job_id"]
        discarded_copy = run_now_copy(c, job3)
        assert discarded_copy is not None
        p = c.ctl("job", "discard", job3)
        assert "discarded" in p.stdout
        gone_soon(discarded_copy)
        shown = json.loads(c.ctl("job", "show", job3, "--json", check=False).stdout)
        assert shown["state"] == "discarded", shown["state"]
        assert any("Discarded by admin" in n for n in shown["notes"]), shown["notes"]
        assert c.dump() == dump1
        bad = c.ctl("job", "approve", job3, check=False)
        assert bad.returncode != 0 and "discarded" in bad.stderr, bad.stderr
        missing = c.ctl("job", "discard", "no-such-job", check=False)
        assert missing.returncode == 5, (missing.returncode, missing.stderr)

        # Both decisions are logged with who and when.
        log = [(u, v, det) for (u, v, det, ts) in audit(c) if v in ("job.approve", "job.discard", "job.undo")]
        assert ("admin", "job.approve", job) in log and ("admin", "job.discard", job3) in log, log
        assert ("admin", "job.undo", job) in log, log
        assert all(ts > 0 for (_, v, _, ts) in audit(c))


@test
def decisions_need_a_valid_token():
    with Cluster("safety-token", workers=1) as c:
        env = dict(os.environ, PATRONSYNC_TOKEN="not-a-token")
        import subprocess
        from harness import BIN
        for verb in ("approve", "discard", "undo"):
            p = subprocess.run([os.path.join(BIN, "patronctl"), "--data", c.data, "job", verb, "x"],
                               capture_output=True, text=True, env=env)
            assert p.returncode != 0 and "valid user token" in p.stderr, (verb, p.returncode, p.stderr)


@test
def empty_header_only_and_failed_shard_inactivate_nothing():
    d = workdir("files-safety-empty")
    header, rows = read_rows(DAY1)
    empty = os.path.join(d, "empty.csv")
    open(empty, "wb").close()
    only_header = write_rows(os.path.join(d, "header.csv"), header, [])
    first = write_rows(os.path.join(d, "first.csv"), header, rows[:1800])
    gone = {r[0] for r in rows[:1800:45]}
    rest = write_rows(os.path.join(d, "rest.csv"), header, [r for r in rows if r[0] not in gone])
    all_sites = ",".join(sorted(set(site_map().values())))
    variants = (
        [],
        # every site listed: every patron in scope and "missing"
        ["--scope-sites", all_sites],
        # and every safety off: still nothing (no records is bad input, never "everyone left")
        ["--scope-sites", all_sites, "--no-thresholds", "--days-before-inactivate", "0", "--delete-after-days", "0",
         "--allow-delete-outstanding"],
    )
    # Physical line 2500 crashes whichever worker plans it (test-only switch):
    # the first 1800 records load; a full file has a failed shard.
    settings = {"test_fault_line": "2500", "max_attempts": "2", "shard_size": "500"}
    with Cluster("safety-empty", workers=2, settings=settings) as c:
        c.sites()
        assert c.run(first, PROFILE)["state"] == "complete"
        dump0 = c.dump()
        for f in (empty, only_header):
            for extra in variants:
                s = c.run(f, PROFILE, "--inactivate-missing", *extra)
                assert c.dump() == dump0, (f, extra)
                assert s["state"] == "complete", (f, extra, s["state"], s["error"])
                assert not any(s["counts"][k] for k in ("added", "updated", "inactivated", "deleted")), s["counts"]
                assert any("holds no records" in n for n in s["notes"]), s["notes"]
                assert any("the file holds no patron records" in n for n in s["notes"]), s["notes"]
        # A failed shard: the other shards apply, nobody is inactivated.
        s = c.run(rest, PROFILE, "--inactivate-missing", "--no-thresholds", expect_exit=3)
        assert s["state"] == "complete_with_errors" and s["shards_failed"] == 1, s
        assert s["counts"]["inactivated"] == 0 and s["counts"]["added"] > 0, s["counts"]
        assert any("Missing patrons were not inactivated: 1 shard failed." in n for n in s["notes"]), s["notes"]
        p = patrons(c)
        assert all(p[k] == (("A",) + p[k][1:]) and p[k][1] is None for k in gone)


def set_clock(path, day):
    """The scheduler's clock (test_clock_file) at noon UTC of day N."""
    t = int(datetime.datetime(2031, 3, 10, 12, tzinfo=datetime.timezone.utc).timestamp()) + day * 86400
    with open(path, "w") as f:
        f.write(f"{t}\n")
    return (datetime.date(2031, 3, 10) + datetime.timedelta(days=day)).isoformat()


@test
def grace_days_deletion_and_outstanding_across_days():
    d = workdir("files-safety-days")
    clock = os.path.join(d, "clock")
    header, rows = read_rows(DAY1)
    gone = rows[7::149][:20]
    m0, checked, rest = gone[0][0], [r[0] for r in gone[1:6]], [r[0] for r in gone[6:]]
    gone_ids = {r[0] for r in gone}
    f = write_rows(os.path.join(d, "f.csv"), header, [r for r in rows if r[0] not in gone_ids])
    f_m0 = write_rows(os.path.join(d, "f-m0.csv"), header, [r for r in rows if r[0] not in gone_ids or r[0] == m0])
    opts = ["--inactivate-missing", "--days-before-inactivate", "2", "--delete-after-days", "1"]
    set_clock(clock, 0)
    with Cluster("safety-days", workers=2, settings={"test_clock_file": clock}) as c:
        c.sites()
        # Out-of-range values are refused with Destiny's messages, before any job.
        for flags, msg in ((["--days-before-inactivate", "1000"], "Number of days before inactivating patrons must be between 0 and 999."),
                           (["--min-records", "1000000"], "Patron records read must be between 0 and 999,999."),
                           (["--inactive-homeroom", "X"], "only when patrons missing from the file are inactivated"),
                           (["--inactivate-missing", "--max-remove-pct", "101"], "percentage between 0 and 100")):
            p = c.ctl("run", DAY1, "--profile", PROFILE, "--copy-in", *flags, check=False)
            assert p.returncode == 2 and msg in p.stderr, (flags, p.returncode, p.stderr)
        c.run(DAY1, PROFILE)
        # Circulation's figures (patronsync never sets them).
        con = c.db()
        con.executemany("UPDATE patrons SET checkouts=2 WHERE district_id=?", [(k,) for k in checked[:3]])
        con.executemany("UPDATE patrons SET fines_cents=150 WHERE district_id=?", [(k,) for k in checked[3:]])
        con.commit()
        con.close()

        d1 = set_clock(clock, 1)
        s = c.run(f, PROFILE, *opts)
        assert s["counts"]["inactivated"] == 0 and s["counts"]["deleted"] == 0, s["counts"]
        p = patrons(c)
        assert all(p[k][0] == "A" and p[k][1] == d1 for k in gone_ids), [p[k] for k in gone_ids][:3]

        set_clock(clock, 2)
        s = c.run(f_m0, PROFILE, *opts)   # m0 is back for a day
        assert s["counts"]["inactivated"] == 0, s["counts"]
        p = patrons(c)
        assert p[m0][1] is None and all(p[k][1] == d1 for k in gone_ids - {m0})

        d3 = set_clock(clock, 3)
        s = c.run(f, PROFILE, *opts)
        assert s["counts"]["inactivated"] == 19 and s["counts"]["deleted"] == 0, s["counts"]
        p = patrons(c)
        assert all(p[k][0] == "I" for k in gone_ids - {m0}) and p[m0] [0:2] == ("A", d3), p[m0]

        set_clock(clock, 4)
        dump_before_day4 = c.dump()
        s4 = c.run(f, PROFILE, *opts)
        assert s4["counts"]["deleted"] == len(rest) and s4["counts"]["inactivated"] == 0, s4["counts"]
        refused = lines(s4, "KEEP", "has outstanding transactions")
        assert ids(refused) == sorted(checked), ids(refused)
        assert all(e["message"] == f"Unable to delete patron ({e['district_id']}); patron has outstanding transactions."
                   for e in refused)
        assert ids(lines(s4, "INFO", "Patron deleted")) == sorted(rest)
        p = patrons(c)
        assert not any(k in p for k in rest) and all(p[k][0] == "I" for k in checked) and p[m0][0] == "A"

        set_clock(clock, 5)
        dump_before_day5 = c.dump()
        s5 = c.run(f, PROFILE, *opts, "--allow-delete-outstanding")
        assert s5["counts"]["deleted"] == len(checked) and s5["counts"]["inactivated"] == 1, s5["counts"]
        p = patrons(c)
        assert not any(k in p for k in checked) and p[m0][0] == "I", p.get(m0)

        # Undo puts deleted patrons back whole (checkouts and fines too).
        c.ctl("job", "undo", s5["job_id"])
        assert c.dump() == dump_before_day5
        c.ctl("job", "undo", s4["job_id"])
        assert c.dump() == dump_before_day4


@test
def dry_run_changes_nothing_and_counts_like_a_run():
    d = workdir("files-safety-dry")
    short, _ = short_file(d, "short.csv")
    with Cluster("safety-dry", workers=3, settings={"shard_size": "500"}) as c:
        c.sites()
        c.run(DAY1, PROFILE)
        dump0 = c.dump()
        db = os.path.join(c.data, "store.db")
        dry = c.run(DAY2, PROFILE, "--dry-run", "--inactivate-missing")
        assert dry["state"] == "complete" and dry["dry_run"], dry
        assert any("Dry run" in n for n in dry["notes"]), dry["notes"]
        assert c.dump() == dump0, "a dry run changed the store"
        assert json.dumps(c.dump(), sort_keys=True) == json.dumps(dump0, sort_keys=True)
        # The held case: the dry run says so and shows the preview.
        dry_short = c.run(short, PROFILE, "--dry-run", "--inactivate-missing")
        assert any("A real run would be held" in n for n in dry_short["notes"]), dry_short["notes"]
        assert len(lines(dry_short, "PREVIEW", "Would be inactivated")) == dry_short["counts"]["inactivated"] > 0
        assert c.dump() == dump0
        real = c.run(DAY2, PROFILE, "--inactivate-missing")
        assert real["counts"] == dry["counts"], (real["counts"], dry["counts"])
        key = lambda s: sorted((e["line"], e["district_id"], e["outcome"], e["message"]) for e in s["exceptions"])
        assert key(real) == key(dry)
        assert c.dump() != dump0
        assert os.path.exists(db)


@test
def undo_restores_the_store_exactly_and_refuses_over_later_jobs():
    d = workdir("files-safety-undo")
    header, rows = read_rows(DAY2)
    _, rows1 = read_rows(DAY1)
    day1 = {r[0]: r for r in rows1}
    changed = [r for r in rows if r[0] in day1 and r != day1[r[0]]]
    same = [r for r in rows if day1.get(r[0]) == r]
    later = [list(r) for r in changed[:20] + same[:20]]
    for r in later:
        r[9] = "Room 7"
    later_file = write_rows(os.path.join(d, "later.csv"), header, later)
    with Cluster("safety-undo", workers=3, settings={"shard_size": "800"}) as c:
        c.sites()
        dump0 = c.dump()
        # A first load (a bulk load: one before-image for all its adds).
        j0 = c.run(DAY1, PROFILE)
        assert j0["counts"]["added"] == 3000, j0["counts"]
        jl = c.run(later_file, PROFILE)
        p = c.ctl("job", "undo", j0["job_id"], check=False)
        assert p.returncode == 1 and "changed since by job " + jl["job_id"] in p.stderr, p.stderr[:1000]
        c.ctl("job", "undo", jl["job_id"])
        c.ctl("job", "undo", j0["job_id"])
        assert c.dump() == dump0, "undo of a first load left patrons"
        c.run(DAY1, PROFILE)
        dump1 = c.dump()
        j2 = c.run(DAY2, PROFILE, "--inactivate-missing")
        assert j2["counts"]["updated"] > 0 and j2["counts"]["added"] > 0 and j2["counts"]["inactivated"] > 0
        dump2 = c.dump()
        j3 = c.run(later_file, PROFILE)
        assert j3["counts"]["updated"] > 0
        p = c.ctl("job", "undo", j2["job_id"], check=False)
        assert p.returncode == 1 and "changed by later jobs" in p.stderr, p.stderr
        assert "changed since by job " + j3["job_id"] in p.stderr, p.stderr[:1000]
        # every patron both jobs changed is named by its District ID
        both = [r[0] for r in c.db().execute(
            "SELECT DISTINCT p.district_id FROM job_changes a JOIN job_changes b ON a.patron_id=b.patron_id "
            "JOIN patrons p ON p.id=a.patron_id WHERE a.job_id=? AND b.job_id=?", (j2["job_id"], j3["job_id"]))]
        assert both and all(did in p.stderr for did in both), (both, p.stderr[:1000])
        assert f"{len(both)} patrons were changed by later jobs" in p.stderr, (len(both), p.stderr[:300])
        assert c.dump()["patrons"] != dump2["patrons"]
        c.ctl("job", "undo", j3["job_id"])
        assert c.dump() == dump2
        again = c.ctl("job", "undo", j3["job_id"], check=False)
        assert again.returncode != 0 and "undone already" in again.stderr
        c.ctl("job", "undo", j2["job_id"])
        assert c.dump() == dump1, "undo did not restore the store exactly"
        shown = json.loads(c.ctl("job", "show", j2["job_id"], "--json").stdout)
        assert any(n.startswith("Undone by admin") for n in shown["notes"]), shown["notes"]

        # --force puts the before-images back over a later job's changes.
        j4 = c.run(DAY2, PROFILE)
        c.run(later_file, PROFILE)
        p = c.ctl("job", "undo", j4["job_id"], "--force", "--json")
        assert json.loads(p.stdout)["forced_over"] > 0, p.stdout
        col = dump1["columns"].index("district_id")
        assert sorted(r[col] for r in c.dump()["patrons"]) == sorted(r[col] for r in dump1["patrons"])
        nothing = c.ctl("job", "undo", "no-such-job", check=False)
        assert nothing.returncode == 5, nothing.stderr


@test
def a_lower_field_limit_is_never_passed_by_a_memo():
    """A record the memo knows as unchanged is split only as far as its
    District ID; the rest of it is not even checked. That is sound because
    the memo holds the very bytes the whole parse took before, under the
    same profile and limits: lower max_fields below the records' width and
    every record is refused again, none passes as unchanged."""
    day1, prof = os.path.join(SAMPLE, "day1.csv"), os.path.join(SAMPLE, "students.properties")
    with Cluster("memo-limit", workers=2) as c:
        c.sites()
        first = c.run(day1, prof)
        assert first["state"] == "complete" and first["counts"]["added"] == 3000, first["counts"]
        again = c.run(day1, prof)
        assert again["counts"]["unchanged"] == 3000, again["counts"]
        c.ctl("down")
        with open(os.path.join(c.data, "patronsync.conf"), "a") as f:
            f.write("max_fields=10\n")
        c.ctl("up", "--workers", 2)
        narrow = c.run(day1, prof)
        assert narrow["counts"]["unchanged"] == 0, narrow["counts"]
        assert narrow["counts"]["invalid_skipped"] == 3000, narrow["counts"]
        assert any("more than the limit of 10" in e["message"] for e in narrow["exceptions"]), narrow["exceptions"][:3]


@test
def memo_never_changes_an_outcome():
    """The unchanged-record memo (docs/RULES.md) is a shortcut only: the same
    jobs on a cluster with it, on one without, and on one whose apply waits
    for every plan instead of streaming give equal summaries and
    equal stores after every job — through a first load, a next day that
    inactivates, patrons coming back, a changed reference table (every memo
    made again), undo, and a file that changes homerooms. And it is used:
    the second run of an unchanged file finds every record by its memo."""
    d = workdir("files-safety-memo")
    header, rows = read_rows(DAY1)
    later = [list(r) for r in rows[:300]]
    for r in later[::3]:
        r[9] = "Room 9"
    later_file = write_rows(os.path.join(d, "later.csv"), header, later)
    short, _ = short_file(d, "short.csv", keep_every=2)

    def jobs(c):
        out = []
        c.sites()
        out.append(c.run(DAY1, PROFILE))
        out.append(c.run(DAY2, PROFILE, "--inactivate-missing", "--no-thresholds"))
        back = c.run(DAY1, PROFILE)
        out.append(back)
        out.append(c.run(short, PROFILE, "--inactivate-missing", "--no-thresholds"))
        out.append(c.run(DAY1, PROFILE))
        c.ctl("site", "add", "NEWSITE", "A new school", "--media")
        out.append(c.run(DAY1, PROFILE))
        out.append(c.run(DAY1, PROFILE))
        c.ctl("job", "undo", out[-1]["job_id"])
        c.ctl("job", "undo", out[-2]["job_id"])
        out.append(c.run(later_file, PROFILE))
        c.ctl("job", "undo", out[-1]["job_id"])   # rows back, memos as the job left them
        out.append(c.run(later_file, PROFILE))
        out.append(c.run(DAY2, PROFILE))
        out.append(c.run(DAY1, PROFILE))
        return out, c.dump()

    settings = {"shard_size": "700", "log_level": "debug"}
    with Cluster("safety-memo-on", workers=2, settings=settings) as on:
        got, dump_on = jobs(on)
        memo_rows = on.db().execute("SELECT count(*) FROM patrons WHERE src_hash <> 0").fetchone()[0]
        logs = "".join(open(os.path.join(on.data, "logs", f)).read()
                       for f in os.listdir(os.path.join(on.data, "logs")) if f.startswith("worker"))
    with Cluster("safety-memo-off", workers=2, settings={**settings, "unchanged_memo": "0"}) as off:
        want, dump_off = jobs(off)
    # The streaming apply (docs/PROTOCOL.md) is a shortcut too: the apply
    # that waits for every plan gives the same.
    with Cluster("safety-stream-off", workers=2, settings={**settings, "stream_apply": "0"}) as waits:
        waited, dump_waited = jobs(waits)
        assert "streams on" not in open(os.path.join(waits.data, "logs", "broker.log")).read()
    assert len(got) == len(want) == len(waited)
    for i, (a, b, w) in enumerate(zip(got, want, waited)):
        assert summary_key(a) == summary_key(b), (i, a["counts"], b["counts"])
        assert summary_key(a) == summary_key(w), (i, a["counts"], w["counts"])
    assert dump_waited == dump_on
    streamed = open(os.path.join(on.data, "logs", "broker.log")).read().count("streams on")
    assert streamed == sum(1 for j in got if j["shards"] >= 2), streamed   # one shard: nothing to stream beside
    assert got[2]["counts"]["updated"] > 0, got[2]["counts"]   # inactivated patrons came back
    assert got[3]["counts"]["inactivated"] > 0, got[3]["counts"]
    assert got[8]["counts"]["updated"] == got[7]["counts"]["updated"] > 0, (got[7]["counts"], got[8]["counts"])
    assert dump_on == dump_off
    assert memo_rows > 2500, memo_rows
    # The runs of DAY1 after the new site: the first makes every memo again
    # (none found by its memo), the second finds them all by it.
    def hits(job):
        return sum(int(m) for m in re.findall(job["job_id"] + r" shard \d+: \d+ records, (\d+) unchanged by", logs))
    assert hits(got[5]) == 0, hits(got[5])
    assert hits(got[6]) == got[6]["counts"]["unchanged"] == got[6]["counts"]["read"], (hits(got[6]), got[6]["counts"])
    assert 0 < hits(got[1]) <= got[1]["counts"]["unchanged"], (hits(got[1]), got[1]["counts"])


@test
def incremental_run_counts_left_out_records_as_present():
    """An Incremental run of a schedule that inactivates missing patrons:
    records it leaves out as unchanged (if any) are in the file all the
    same, so exactly the patrons not in the file are inactivated."""
    header, rows = read_rows(DAY1)
    gone = {r[0] for r in rows[3::120]}
    with Cluster("safety-incremental", workers=2) as c:
        c.sites()
        imp = os.path.join(c.data, "import")
        os.makedirs(imp, exist_ok=True)
        target = os.path.join(imp, "students.csv")
        write_rows(target, header, rows)
        c.ctl("schedule", "add", "Nightly", "--file", "students.csv", "--profile", PROFILE, "--time", "03:00",
              "--incremental", "daily", "--keep-jobs", "5", "--inactivate-missing")
        first = json.loads(c.ctl("schedule", "run", "Nightly", "--wait", "--json").stdout)
        assert first["state"] == "complete" and first["counts"]["added"] == 3000, first["counts"]
        write_rows(target, header, [r for r in rows if r[0] not in gone])
        p = c.ctl("schedule", "run", "Nightly", "--incremental", "--wait", "--json", check=False)
        s = json.loads(p.stdout)
        assert s["state"] == "complete", (s["state"], s["notes"])
        assert s["counts"]["inactivated"] == len(gone), (s["counts"], len(gone), s["notes"])
        assert set(ids(lines(s, "INFO", "Patron inactivated"))) == gone
        after = patrons(c)
        assert {k for k, v in after.items() if v[0] == "I"} == gone

if __name__ == "__main__":
    main()
