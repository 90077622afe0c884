"""test_resilience: what keeps a fault or a mistake from taking the cluster
down (issue 20) — one scheduler and one broker per data folder."""
import os
import signal
import subprocess

from harness import BIN, Cluster, cluster_pid, cluster_signal, main, test, wait_gone


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


if __name__ == "__main__":
    main()
