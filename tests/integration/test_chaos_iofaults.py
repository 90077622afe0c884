"""test_chaos_iofaults: I/O faults at every write point (issue 20), in
SQLite's own style. tests/shim/iofault.c, preloaded into the cluster's
processes, counts every write, pwrite, writev, fsync, fdatasync, ftruncate
and rename that patronsync's programs make under the data folder (the
store, the staged plans, the archive, the work folder, control.db; not the
logs, not redis-server) and fails the Nth with ENOSPC or EIO. A small
next-day update is run once to count its write points W, then once for each
N: after each, every process of the cluster is still running, the store
passes integrity_check and equals either the state before the job or the
state after the clean run, and the job's outcome says which (complete: the
after state; failed, or no job at all: the before state, its counts 0).
`make chaos` (CHAOS=1) sweeps every N from 1 to W; `make test` a sample."""
import json
import mmap
import os
import struct

from harness import BIN, SANITIZED, Cluster, cluster_pid, district, generate, main, test, workdir

CHAOS = os.environ.get("CHAOS") == "1"
SHIM = os.path.join(BIN, "tools", "libiofault.so")
ERRNO = {"ENOSPC": 28, "EIO": 5}


class Faults:
    """The shim's shared state: counter, target, errno, failed (4 x u64)."""

    def __init__(self, path):
        with open(path, "wb") as f:
            f.write(b"\0" * 4096)
        self.f = open(path, "r+b")
        self.m = mmap.mmap(self.f.fileno(), 4096)

    def arm(self, target, err="ENOSPC"):
        struct.pack_into("<QQQQ", self.m, 0, 0, target, ERRNO[err], 0)

    def counter(self):
        return struct.unpack_from("<Q", self.m, 0)[0]

    def failed(self):
        return struct.unpack_from("<Q", self.m, 24)[0]

    def close(self):
        self.m.close()
        self.f.close()


def faulty_cluster(name, faults_path):
    c = Cluster(name, workers=1, settings={"shard_size": "100"})
    c.env = {"LD_PRELOAD": SHIM, "IOFAULT_ROOT": os.path.realpath(c.data), "IOFAULT_STATE": faults_path}
    return c


def run_job(c, path, prof):
    p = c.ctl("run", path, "--profile", prof, "--copy-in", "--wait", "--json", check=False, timeout=300)
    s = json.loads(p.stdout) if p.stdout.strip().startswith("{") else None
    return p, s


def alive(c):
    for name in ("scheduler", "broker", "worker-1"):
        assert cluster_pid(c, name), f"{name} is not running"


@test
def every_write_point_fails_to_a_whole_store_before_or_after():
    d = workdir("iofault-files")
    day1, prof, sites = district(d, 300, 77)
    day2 = generate(os.path.join(d, "day2.csv"), 0, 78, mutate_from=day1)
    faults = Faults(os.path.join(d, "faults.state"))
    saved = {k: os.environ.get(k) for k in ("LD_PRELOAD", "IOFAULT_ROOT", "IOFAULT_STATE", "ASAN_OPTIONS")}
    c = faulty_cluster("iofaults", faults.f.name)
    os.environ.update(c.env)
    if SANITIZED:   # the shim comes before the sanitizer's runtime
        os.environ["ASAN_OPTIONS"] = (os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0").lstrip(":")
    try:
        with c:
            c.sites(sites)
            c.run(day1, prof, expect_exit=0)
            before = c.dump()
            # The clean run: its write points, and the after state.
            faults.arm(0)
            p, s = run_job(c, day2, prof)
            assert p.returncode == 0 and s["state"] == "complete", p.stderr
            points = faults.counter()
            after = c.dump()
            assert after["patrons"] != before["patrons"]
            c.ctl("job", "undo", s["job_id"])
            assert c.dump() == before
            assert points > 20, f"only {points} write points counted: is the shim loaded?"
            if CHAOS:
                todo = list(range(1, points + 1))
            else:   # a sample spread over the job: the first, the last, and between
                todo = sorted({1, 2, points} | {1 + k * (points - 1) // 11 for k in range(12)})
            print(f"# {points} write points in the job; failing {len(todo)} of them", flush=True)
            seen = {"before": 0, "after": 0}
            for i, n in enumerate(todo):
                err = "ENOSPC" if i % 2 == 0 else "EIO"
                faults.arm(n, err)
                p, s = run_job(c, day2, prof)
                faults.arm(0)
                what = f"write point {n} ({err}): exit {p.returncode}, {s and s['state']}: {p.stderr[-600:]}"
                alive(c)
                now = c.dump()   # integrity_check inside
                if now == after:
                    assert s is not None and s["state"] == "complete", what
                    seen["after"] += 1
                    c.ctl("job", "undo", s["job_id"])
                    assert c.dump() == before, what
                elif now == before:
                    # failed, and said so: nothing changed; or refused before a job existed
                    assert p.returncode != 0, what
                    if s is not None:
                        assert s["state"] == "failed", what
                        assert all(v == 0 for k, v in s["counts"].items() if k != "read"), what
                    else:
                        assert p.stderr.strip(), what
                    seen["before"] += 1
                else:
                    raise AssertionError(f"the store is neither before nor after: {what}")
            print(f"# outcomes: {seen['before']} before (failed), {seen['after']} after (complete)", flush=True)
            # The cluster still does its work.
            p, s = run_job(c, day2, prof)
            assert p.returncode == 0 and c.dump() == after, p.stderr
    finally:
        faults.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


if __name__ == "__main__":
    main()
