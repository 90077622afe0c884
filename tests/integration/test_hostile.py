"""Hostile and unusual input through the real cluster (issue 4): every file
of tests/corpus/ (and the large ones tests/corpus/make_large.py writes) run
against a store loaded from the repository's sample, each with its expected
outcome — job state, counts, summary lines and notes, the error naming the
file and line — and the canonical store dump compared before and after:
exactly the expected patrons changed, nothing else. Then the file itself:
paths outside the import root, links, FIFOs, devices, folders, a file still
being written, the size limit; and the archive of loaded files.
docs/INPUT.md is the table of outcomes these tests hold the code to."""
import json
import os
import stat
import subprocess
import sys
import threading
import time

from harness import BIN, Cluster, ROOT, SAMPLE, SANITIZED, main, test

CORPUS = os.path.join(ROOT, "tests", "corpus")
PROFILE = os.path.join(SAMPLE, "students.properties")
EXIT = {"complete": 0, "complete_with_errors": 3, "failed": 1}
ZERO = {"added": 0, "updated": 0, "deleted": 0, "inactivated": 0, "transferred": 0}


# ---- a minimal ZeroMQ (ZMTP 3, NULL mechanism) DEALER and protobuf encoder:
# enough to send the scheduler's "run" verb with a file name patronctl would
# never send (patronctl copies the operator's file into the import root),
# and a JobRequest straight to the broker. The real services answer.

def _varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _bytes(num, data):
    if isinstance(data, str):
        data = data.encode()
    return _varint(num << 3 | 2) + _varint(len(data)) + data


def _uint(num, v):
    return _varint(num << 3) + _varint(v)


def _fields(buf):
    """Decode one protobuf message into {field number: [values]}."""
    out, i = {}, 0
    while i < len(buf):
        key, shift = 0, 0
        while True:
            b = buf[i]
            i += 1
            key |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                break
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, shift = 0, 0
            while True:
                b = buf[i]
                i += 1
                v |= (b & 0x7F) << shift
                shift += 7
                if b < 0x80:
                    break
        elif wt == 2:
            n, shift = 0, 0
            while True:
                b = buf[i]
                i += 1
                n |= (b & 0x7F) << shift
                shift += 7
                if b < 0x80:
                    break
            v = buf[i:i + n]
            i += n
        elif wt == 1:
            v = buf[i:i + 8]
            i += 8
        elif wt == 5:
            v = buf[i:i + 4]
            i += 4
        else:
            raise ValueError(f"wire type {wt}")
        out.setdefault(num, []).append(v)
    return out


def zmq_request(c, name, body, as_role, timeout=30):
    """One request on a DEALER connection to the endpoint `name` (as the
    cluster's CURVE client `as_role`: every endpoint is authenticated);
    the reply's single frame."""
    keys = os.path.join(c.data, "keys")
    server = {"control_endpoint": "scheduler", "jobs_endpoint": "broker"}[name]
    p = subprocess.run([os.path.join(BIN, "tools", "zmq_rogue"), "raw", endpoint(c, name),
                        f"key:{keys}/{server}.pub:{keys}/{as_role}.key", str(timeout)],
                       input=body, capture_output=True, timeout=timeout + 10)
    assert p.returncode == 0 and p.stdout, f"no reply from {name}: {p.stderr}"
    return p.stdout


def endpoint(c, name):
    out = c.ctl("--print-config").stdout
    for ln in out.splitlines():
        k, _, v = ln.partition("=")
        if k.strip() == name:
            return v.strip()
    raise AssertionError(f"{name} not in --print-config")


def raw_run(c, name, encoding=None):
    """The scheduler's "run" verb with `name` as given (relative to the
    import root, or not): what a schedule naming that file does. Job id."""
    token = open(os.path.join(c.data, "admin.token")).read().strip()
    opts = [("profile_name", "students.properties")] + ([("encoding", encoding)] if encoding else [])
    body = _bytes(1, token) + _bytes(2, "run") + _bytes(3, name)
    for k, v in opts:
        body += _bytes(4, _bytes(1, k) + _bytes(2, v))
    body += _bytes(5, open(PROFILE, "rb").read()) + _uint(6, 1)
    rep = _fields(zmq_request(c, "control_endpoint", body, "client"))
    assert rep.get(1, [0])[0] == 1, f"run refused: {rep}"
    text = rep[3][0].decode()
    return text.split('"job_id":"')[1].split('"')[0]


def broker_job(c, job_id, name, schedule):
    """A JobRequest straight to the broker (as the scheduler sends one)."""
    opts = _varint(10 << 3) + _varint(-1)     # JobOptions.delete_after_days = -1
    req = (_bytes(1, job_id) + _bytes(2, name) + _bytes(3, "students.properties") +
           _bytes(4, open(PROFILE, "rb").read()) + _bytes(6, schedule) + _bytes(7, "test") +
           _uint(8, int(time.time() * 1000)) + _bytes(9, opts) + _bytes(10, time.strftime("%Y-%m-%d")))
    rep = _fields(zmq_request(c, "jobs_endpoint", _bytes(1, req), "scheduler"))
    ack = _fields(rep[1][0])
    assert ack.get(2, [0])[0] == 1, f"broker refused the job: {ack}"
    return wait_job(c, job_id)


def wait_job(c, job_id, timeout=120):
    until = time.time() + timeout
    while True:
        p = c.ctl("job", "show", job_id, "--json", check=False)
        if p.returncode in (0, 1, 3, 4) and p.stdout.strip():
            s = json.loads(p.stdout)
            if s["state"] in ("complete", "complete_with_errors", "failed", "held", "stopped"):
                return s
        assert time.time() < until, f"job {job_id} did not finish: {p.stdout[:500]} {p.stderr}"
        time.sleep(0.1)


# ---- the store before and after ----

def by_id(dump):
    cols = dump["columns"]
    k = cols.index("district_id")
    return {r[k]: dict(zip(cols, r)) for r in dump["patrons"]}


def store_diff(before, after):
    """{district_id: {field: new value}} of changed patrons, added ids, removed ids."""
    b, a = by_id(before), by_id(after)
    changed = {}
    for did in set(a) & set(b):
        d = {k: v for k, v in a[did].items() if b[did][k] != v}
        if d:
            changed[did] = d
    assert before["sites"] == after["sites"], "sites changed"
    return changed, set(a) - set(b), set(b) - set(a)


# ---- one cluster for the whole file, base store from the sample ----

_cluster = None
LARGE = None


def cluster():
    global _cluster, LARGE
    if _cluster is None:
        c = Cluster("hostile", workers=2, settings={"max_file_bytes": "67108864"})
        c.__enter__()
        _cluster = c
        import atexit
        atexit.register(lambda: c.__exit__(None, None, None))
        c.sites()
        s = c.run(os.path.join(SAMPLE, "day1.csv"), PROFILE)
        assert s["state"] == "complete" and s["counts"]["added"] == 3000, s
        LARGE = os.path.join(c.dir, "large")
        subprocess.run([sys.executable, os.path.join(CORPUS, "make_large.py"), LARGE], check=True)
    return _cluster


def sample_ids():
    import csv
    with open(os.path.join(SAMPLE, "day1.csv"), encoding="cp1252", newline="") as f:
        rows = [r for r in csv.reader(f)][1:]
    return [r[0] for r in rows if r]


IDS = sample_ids()


def plain_ids():
    sys.dont_write_bytecode = True      # nothing written into tests/corpus
    sys.path.insert(0, CORPUS)
    from make_small import PLAIN
    return [r[0] for r in PLAIN]


def check(s, state, counts=None, exceptions=(), notes=(), error=(), read=None):
    """The summary holds what a user would check: state, counts (the ones
    given; changes not given are zero), the summary lines exactly (line and
    a part of the message), the notes and the error (parts of them)."""
    assert s["state"] == state, f"state {s['state']}, expected {state}: {s['error']} {s['notes']}"
    want = dict(ZERO)
    want.update(counts or {})
    if read is not None:
        want["read"] = read
    got = {k: s["counts"][k] for k in want}
    assert got == want, f"counts {got}, expected {want}"
    lines = [(e["line"], e["message"]) for e in s["exceptions"] if e["outcome"] != "INFO"]
    assert len(lines) == len(exceptions), f"summary lines {lines}, expected {list(exceptions)}"
    for (ln, msg), (wl, wm) in zip(lines, exceptions):
        assert ln == wl and wm in msg, f"summary line {ln} '{msg}', expected {wl} '{wm}'"
    for n in notes:
        assert any(n in x for x in s["notes"]), f"no note with '{n}' in {s['notes']}"
    for e in error:
        assert e in s["error"], f"error '{s['error']}' lacks '{e}'"
    if state == "failed":
        assert s["counts"]["read"] == 0, s["counts"]


def run_case(path, state, changes=None, encoding=None, **expect):
    """Run one file through patronctl; check the summary and that the store
    changed exactly as `changes` says ({district_id: {field: value}})."""
    c = cluster()
    before = c.dump()
    extra = ["--encoding", encoding] if encoding else []
    t0 = time.time()
    p = c.ctl("run", path, "--profile", PROFILE, "--copy-in", "--wait", "--json", *extra, check=False, timeout=180)
    assert p.returncode == EXIT[state], f"exit {p.returncode}, expected {EXIT[state]}: {p.stderr}{p.stdout[:2000]}"
    s = json.loads(p.stdout)
    check(s, state, **expect)
    if state == "failed" or expect.get("error"):
        assert os.path.basename(path) in s["error"], f"the error does not name the file: {s['error']}"
    changed, added, removed = store_diff(before, c.dump())
    assert not added and not removed, (added, removed)
    want = changes or {}
    got = {did: {k: v for k, v in f.items() if k in want.get(did, {})} for did, f in changed.items()}
    assert set(changed) == set(want), f"changed patrons {sorted(changed)}, expected {sorted(want)}"
    assert got == want, f"store changes {got}, expected {want}"
    for did, f in changed.items():      # besides the expected fields, only the job stamp and hash
        extra_fields = set(f) - set(want[did]) - {"updated_job", "row_hash"}
        assert not extra_fields, f"{did}: also changed {extra_fields}"
    return s, time.time() - t0


def corpus(name):
    return os.path.join(CORPUS, name)


# ---- encodings ----

@test
def encodings_end_to_end():
    run_case(corpus("enc-cp1252.csv"), "complete", {IDS[3]: {"last_name": "Núñez–Œuvre €"}},
             counts={"updated": 1, "unchanged": 19}, read=20)
    run_case(corpus("enc-latin1.csv"), "complete", {IDS[21]: {"last_name": "Þórsdóttir-Ñ"}},
             encoding="ISO-8859-1", counts={"updated": 1, "unchanged": 19}, read=20)
    run_case(corpus("enc-macroman.csv"), "complete", {IDS[42]: {"last_name": "Müller-Çelik"}},
             encoding="MacRoman", counts={"updated": 1, "unchanged": 19}, read=20)
    run_case(corpus("enc-utf8.csv"), "complete", {IDS[63]: {"last_name": "Nguyễn-Łukasz"}},
             encoding="UTF-8", counts={"updated": 1, "unchanged": 19}, read=20)
    s, _ = run_case(corpus("enc-utf8-bom.csv"), "complete", {IDS[84]: {"last_name": "Øyvind-Ćosić"}},
                    encoding="UTF-8", counts={"updated": 1, "unchanged": 19}, read=20)
    assert s["notes"] == [], s["notes"]          # a BOM that agrees is no news
    s, _ = run_case(corpus("enc-utf16le-bom.csv"), "complete", {IDS[105]: {"last_name": "李-Zhang"}},
                    encoding="UTF-16", counts={"updated": 1, "unchanged": 19}, read=20)
    assert s["notes"] == [], s["notes"]
    run_case(corpus("enc-utf16be-bom.csv"), "complete", {IDS[126]: {"last_name": "Παπαδόπουλος"}},
             encoding="UTF-16BE", counts={"updated": 1, "unchanged": 19}, read=20)
    run_case(corpus("enc-utf16le-bom-named.csv"), "complete", {IDS[141]: {"last_name": "Ибрагимова"}},
             encoding="UTF-16LE", counts={"updated": 1, "unchanged": 19}, read=20)
    run_case(corpus("enc-cp1252.csv"), "failed", encoding="KLINGON-8", read=0,
             error=['unknown encoding "KLINGON-8"'])


@test
def byte_order_mark_contradicting_the_encoding_wins_with_a_warning():
    # The BOM is followed (the records are read right), but the encoding
    # given is wrong: a warning, and complete_with_errors (exit 3), never a
    # plain "complete" (issue 16).
    run_case(corpus("bom-utf8-in-cp1252.csv"), "complete_with_errors", {IDS[162]: {"last_name": "Đorđević"}},
             counts={"updated": 1, "unchanged": 19}, read=20,
             notes=["Warning: file 'adhoc/", "bom-utf8-in-cp1252.csv' begins with a UTF-8 byte order mark, so it was "
                    "read as UTF-8, not as the windows-1252 it was given as. Give its encoding as UTF-8."])
    run_case(corpus("bom-utf16le-in-cp1252.csv"), "complete_with_errors", {IDS[183]: {"last_name": "Ōtake"}},
             counts={"updated": 1, "unchanged": 19}, read=20,
             notes=["begins with a UTF-16LE byte order mark, so it was read as UTF-16LE, not as the windows-1252 it "
                    "was given as. Give its encoding as UTF-16LE (or UTF-16)."])
    run_case(corpus("bom-utf16be-in-utf8.csv"), "complete_with_errors", {IDS[201]: {"last_name": "Šťastný"}},
             encoding="UTF-8", counts={"updated": 1, "unchanged": 19}, read=20,
             notes=["begins with a UTF-16BE byte order mark, so it was read as UTF-16BE, not as the UTF-8 it was "
                    "given as."])
    run_case(corpus("utf16-nobom.csv"), "complete", {IDS[222]: {"last_name": "Ærø"}},
             encoding="UTF-16", counts={"updated": 1, "unchanged": 19}, read=20,
             notes=["without a byte-order mark; read as UTF-16BE"])


@test
def bytes_invalid_in_the_encoding_skip_their_record():
    off = open(corpus("invalid-cp1252.csv"), "rb").read().index(b"\x81")
    run_case(corpus("invalid-cp1252.csv"), "complete", counts={"unchanged": 19, "invalid_skipped": 1}, read=20,
             exceptions=[(7, f"Line 7: bytes invalid in windows-1252 at byte offset {off} of the file; record skipped.")],
             notes=["1 place(s) in the file held bytes invalid in windows-1252"])
    data = open(corpus("invalid-utf8.csv"), "rb").read()
    off1, off2 = data.index(b"\xc3\x28"), data.index(b"\xc0\xaf")
    run_case(corpus("invalid-utf8.csv"), "complete", encoding="UTF-8",
             counts={"unchanged": 18, "invalid_skipped": 2}, read=20,
             exceptions=[(12, f"bytes invalid in UTF-8 at byte offset {off1} of the file"),
                         (17, f"bytes invalid in UTF-8 at byte offset {off2} of the file")])
    data = open(corpus("utf8-cut-at-end.csv"), "rb").read()
    run_case(corpus("utf8-cut-at-end.csv"), "complete", encoding="UTF-8",
             counts={"unchanged": 19, "invalid_skipped": 1}, read=20,
             exceptions=[(21, f"bytes invalid in UTF-8 at byte offset {len(data) - 2} of the file")])


@test
def a_file_that_is_not_text_fails_the_job():
    run_case(corpus("cp1252-read-as-utf8.csv"), "failed", encoding="UTF-8", read=0,
             error=["does not read as UTF-8 text: 20 of its 21 records hold NUL bytes or bytes invalid in UTF-8",
                    "the first on line 2", "is its encoding right?", "no patron was changed"])
    run_case(corpus("utf16le-nobom-as-cp1252.csv"), "failed", read=0,
             error=["is not a text file: line 1 holds NUL bytes", "UTF-16 without a byte-order mark?",
                    "every second byte is NUL (the second of ", "the pattern of UTF-16LE",
                    "give its encoding as UTF-16LE, or UTF-16"])
    for name in ("binary-zip.xlsx", "binary-gzip.csv.gz", "binary-elf"):
        run_case(corpus(name), "failed", read=0, error=["is not a text file: line 1 holds NUL bytes"])
    for name in ("binary-png.png", "binary-pdf.pdf"):
        run_case(corpus(name), "failed", read=0, error=["does not read as windows-1252 text", "(the first on line"])
    cluster()
    run_case(os.path.join(LARGE, "binary-big.bin"), "failed", read=0, error=["is not a text file: line 1"])


# ---- CSV shapes ----

@test
def quoted_fields_line_ends_and_blank_lines():
    R = IDS
    run_case(corpus("quoted-fields.csv"), "complete",
             {R[303]: {"homeroom": 'Room 12, "B" wing'}, R[305]: {"address_primary_line1": "Apt 4\r\nBuilding C"},
              R[307]: {"user_defined1": "two\nlines"}},
             counts={"updated": 3, "unchanged": 17, "invalid_skipped": 1}, read=21,
             exceptions=[(14, "Line 14: 8 fields; the profile expects at least 22.")])
    run_case(corpus("line-ends-lf.csv"), "complete", {R[325]: {"first_name": "Zoë"}},
             counts={"updated": 1, "unchanged": 19}, read=20)
    run_case(corpus("line-ends-cr.csv"), "complete", {R[341]: {"first_name": "Renée"}},
             counts={"updated": 1, "unchanged": 19}, read=20)
    run_case(corpus("line-ends-mixed.csv"), "complete", counts={"unchanged": 20, "invalid_skipped": 1}, read=21,
             exceptions=[(12, "Line 12: 5 fields")])
    run_case(corpus("no-final-newline.csv"), "complete", {R[399]: {"last_name": "Last-Line"}},
             counts={"updated": 1, "unchanged": 19}, read=20)
    # the fourth record's address holds a line break: the short record is on line 25
    run_case(corpus("blank-lines.csv"), "complete", counts={"unchanged": 10, "invalid_skipped": 1}, read=11,
             exceptions=[(25, "Line 25: 3 fields")])
    run_case(corpus("trailing-spaces.csv"), "complete", counts={"unchanged": 20}, read=20)
    run_case(corpus("many-blank-lines.csv"), "complete", {R[600]: {"first_name": "Late"}},
             counts={"updated": 1, "invalid_skipped": 1}, read=2, exceptions=[(5003, "Line 5003: 4 fields")])


@test
def records_that_do_not_fit_are_skipped():
    P = plain_ids()
    run_case(corpus("too-few-fields.csv"), "complete", counts={"unchanged": 19, "invalid_skipped": 1}, read=20,
             exceptions=[(7, "Line 7: 10 fields; the profile expects at least 22.")])
    run_case(corpus("too-many-fields.csv"), "complete", counts={"unchanged": 19, "invalid_skipped": 1}, read=20,
             exceptions=[(12, "Line 12: 25 fields; the profile expects at most 22.")])
    run_case(corpus("nul-byte.csv"), "complete", counts={"unchanged": 19, "invalid_skipped": 1}, read=20,
             exceptions=[(12, "Line 12: record holds a NUL byte")])
    run_case(corpus("semicolons.csv"), "complete", counts={"invalid_skipped": 20}, read=20,
             exceptions=[(n, f"Line {n}: 1 fields; the profile expects at least 22.") for n in range(2, 22)])
    run_case(corpus("quote-in-unquoted-field.csv"), "complete", {P[65]: {"last_name": 'O"Brien'}},
             counts={"updated": 1, "unchanged": 19}, read=20)
    # "Room"5: libcsv goes back inside the quotes, up to the next quote on
    # line 8; lines 7-8 are one record of the wrong width
    run_case(corpus("quote-reopen.csv"), "complete", counts={"unchanged": 18, "invalid_skipped": 1}, read=19,
             exceptions=[(7, "Line 7: ")])
    run_case(corpus("duplicates.csv"), "complete", {IDS[565]: {"first_name": "Later"}},
             counts={"updated": 1, "unchanged": 19, "duplicates_superseded": 1, "invalid_skipped": 1}, read=22,
             exceptions=[(7, "appears again on line 22; this line was superseded."),
                         (23, "Line 23: 6 fields; the profile expects at least 22.")])
    run_case(corpus("control-chars.csv"), "complete", {P[124]: {"user_defined1": "bell\x07esc\x1b"}},
             counts={"updated": 1, "unchanged": 19}, read=20)


@test
def an_unterminated_quote_fails_the_job():
    run_case(corpus("unterminated-midfile.csv"), "failed", read=0,
             error=["the record starting on line 6 opens a quoted field that is never closed",
                    "on line 21", "cut off or broken from line 6 on", "no patron was changed"])
    run_case(corpus("unterminated-last-line.csv"), "failed", read=0,
             error=["the record starting on line 22 opens a quoted field that is never closed", "on line 22"])


def peak_rss_kb(c, name):
    pid = open(os.path.join(c.data, "run", name + ".pid")).read().strip()
    for ln in open(f"/proc/{pid}/status"):
        if ln.startswith("VmHWM:"):
            return int(ln.split()[1])
    return 0


@test
def large_field_and_wide_record_are_skipped_in_bounded_memory():
    c = cluster()
    run_case(os.path.join(LARGE, "field-10mb.csv"), "complete", counts={"unchanged": 20, "invalid_skipped": 1},
             read=21, exceptions=[(12, "Line 12: record of 10485")])
    run_case(os.path.join(LARGE, "columns-10000.csv"), "complete",
             counts={"unchanged": 20, "invalid_skipped": 1}, read=21,
             exceptions=[(12, "Line 12: 10000 fields, more than the limit of 1000")])
    # a few times the record, not a copy per field or per column
    if not SANITIZED:
        for name in ("broker", "worker-1", "worker-2"):
            kb = peak_rss_kb(c, name)
            assert kb < 100 * 1024, f"{name} peaked at {kb} kB"


@test
def files_without_records_change_nothing():
    for name in ("empty.csv", "header-only.csv", "header-only-no-newline.csv", "whitespace-only.csv"):
        run_case(corpus(name), "complete", read=0, notes=["holds no records"])
    # a UTF-8 BOM in a file given as windows-1252 contradicts it, records or
    # none: a warning (docs/INPUT.md)
    run_case(corpus("bom-only.csv"), "complete_with_errors", read=0,
             notes=["holds no records", "begins with a UTF-8 byte order mark, so it was read as UTF-8, not as the "
                    "windows-1252 it was given as"])


# ---- the file itself ----

@test
def paths_outside_the_import_root_and_odd_files_are_refused():
    c = cluster()
    imp = os.path.join(c.data, "import")
    d = os.path.join(imp, "hostile")
    os.makedirs(d, exist_ok=True)
    outside = os.path.join(c.dir, "outside.csv")
    open(outside, "wb").write(open(corpus("enc-cp1252.csv"), "rb").read())
    inside = os.path.join(d, "real.csv")
    # line-ends-lf.csv with the first name it gives IDS[325] changed again, on
    # that record's line only (other sample records hold a Zoë of their own)
    lf = open(corpus("line-ends-lf.csv"), "rb").read().split(b"\n")
    k = next(i for i, ln in enumerate(lf) if ln.startswith(IDS[325].encode() + b","))
    lf[k] = lf[k].replace(",Zoë,".encode("cp1252"), b",Zoey-Link,", 1)
    open(inside, "wb").write(b"\n".join(lf))
    os.symlink(outside, os.path.join(d, "link-out.csv"))
    os.symlink("../../../outside.csv", os.path.join(d, "link-up.csv"))
    os.symlink("real.csv", os.path.join(d, "link-in.csv"))
    os.symlink("loop-b.csv", os.path.join(d, "loop-a.csv"))
    os.symlink("loop-a.csv", os.path.join(d, "loop-b.csv"))
    os.mkfifo(os.path.join(d, "pipe.csv"))
    os.symlink("pipe.csv", os.path.join(d, "link-to-pipe.csv"))
    os.mkdir(os.path.join(d, "folder.csv"))
    cases = [
        ("../outside.csv", "'..' is refused"),
        ("hostile/../../outside.csv", "'..' is refused"),
        (outside, "absolute paths are refused"),
        ("/etc/passwd", "absolute paths are refused"),
        ("hostile/link-out.csv", "leads outside the import root"),
        ("hostile/link-up.csv", "leads outside the import root"),
        ("hostile/loop-a.csv", "Too many levels of symbolic links"),
        ("hostile/pipe.csv", "is a FIFO (named pipe), not a regular file; refused"),
        ("hostile/link-to-pipe.csv", "is a FIFO (named pipe), not a regular file; refused"),
        ("hostile/folder.csv", "is a folder, not a regular file; refused"),
        ("hostile/none.csv", "not found under the import root"),
        ("", "no file named"),
    ]
    if os.geteuid() == 0:
        os.mknod(os.path.join(d, "null.csv"), 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        cases.append(("hostile/null.csv", "is a character device, not a regular file; refused"))
    else:
        print("  (device file case skipped: mknod needs root)")
    for name, why in cases:
        before = c.dump()
        t0 = time.time()
        s = wait_job(c, raw_run(c, name))
        assert time.time() - t0 < 20, f"{name}: took {time.time() - t0:.1f}s"
        check(s, "failed", read=0, error=[why])
        assert c.dump() == before
    before = c.dump()
    s = wait_job(c, raw_run(c, "hostile/link-in.csv"))   # a link that stays inside is fine
    check(s, "complete", counts={"updated": 1, "unchanged": 19}, read=20)
    changed, _, _ = store_diff(before, c.dump())
    assert set(changed) == {IDS[325]} and changed[IDS[325]]["first_name"] == "Zoey-Link", changed


@test
def settle_wait_size_limit_and_archive_per_schedule():
    """A second cluster: files must be still for 2 s, give up after 6 s,
    at most 1 MB, two archive copies per schedule."""
    with Cluster("hostile-settle", workers=1,
                 settings={"settle_seconds": "2", "settle_timeout_seconds": "6", "max_file_bytes": "1000000",
                           "archive_keep": "2", "max_message_bytes": "1048576"}) as c:
        c.sites()
        imp = os.path.join(c.data, "import")
        day1 = open(os.path.join(SAMPLE, "day1.csv"), "rb").read()
        lines = day1.split(b"\r\n")
        header, rows = lines[0], [x for x in lines[1:] if x]

        def place(name, data, age=3600):
            path = os.path.join(imp, name)
            with open(path, "wb") as f:
                f.write(data)
            t = time.time() - age
            os.utime(path, (t, t))
            return path

        # shards are cut by bytes too: at most a quarter of max_message_bytes
        place("day1.csv", day1)
        s = wait_job(c, raw_run(c, "day1.csv"))
        check(s, "complete", counts={"added": 3000}, read=3000)
        assert s["shards"] == 3, s["shards"]

        # a record too long to travel to a worker even alone fails the job
        place("one-long-record.csv", header + b"\r\n" + rows[0] + b"," + b"x" * 600000 + b"\r\n")
        s = wait_job(c, raw_run(c, "one-long-record.csv"))
        check(s, "failed", read=0, error=["the record starting on line 2 is 600", "more than the 524288 bytes a worker accepts"])

        # a file that has been still for long costs no wait; a file just
        # written is read once it has been still for settle_seconds
        small = header + b"\r\n" + b"\r\n".join(rows[:5]) + b"\r\n"
        place("still.csv", small)
        s = wait_job(c, raw_run(c, "still.csv"))
        check(s, "complete", counts={"unchanged": 5}, read=5)
        assert s["finished_ms"] - s["started_ms"] < 2000, s
        place("fresh.csv", small, age=0)
        s = wait_job(c, raw_run(c, "fresh.csv"))
        check(s, "complete", counts={"unchanged": 5}, read=5)
        assert s["finished_ms"] - s["started_ms"] >= 1500, s

        # over the size limit (a sparse file: no disk used)
        big = os.path.join(imp, "big.csv")
        with open(big, "wb") as f:
            f.truncate(1000001)
        before = c.dump()
        s = wait_job(c, raw_run(c, "big.csv"))
        check(s, "failed", read=0, error=["'big.csv' is 1000001 bytes, over the limit of 1000000 bytes (max_file_bytes)"])

        # still being written after settle_timeout_seconds: the job fails saying so
        path = place("growing.csv", header + b"\r\n", age=0)
        stop = threading.Event()

        def writer(path, n):
            with open(path, "ab") as f:
                for i in range(n):
                    if stop.is_set():
                        return
                    f.write(rows[i] + b"\r\n")
                    f.flush()
                    time.sleep(0.25)

        th = threading.Thread(target=writer, args=(path, 40))
        th.start()
        t0 = time.time()
        s = wait_job(c, raw_run(c, "growing.csv"))
        stop.set()
        th.join()
        stop.clear()
        check(s, "failed", read=0, error=["'growing.csv' was still being written after 6 seconds", "not read"])
        assert 6 <= time.time() - t0 < 14, time.time() - t0
        assert c.dump() == before

        # written for a while, then still: waited for, then read whole
        path = place("slow.csv", header + b"\r\n", age=0)
        th = threading.Thread(target=writer, args=(path, 5))
        th.start()
        s = wait_job(c, raw_run(c, "slow.csv"))
        th.join()
        check(s, "complete", counts={"unchanged": 5}, read=5)

        # stamped in the future (a clock ahead of ours) but not changing: read after being watched still
        path = place("future.csv", small, age=-86400)
        s = wait_job(c, raw_run(c, "future.csv"))
        check(s, "complete", counts={"unchanged": 5}, read=5)

        # the archive: a folder per schedule, the newest archive_keep copies, named by job
        place("nightly.csv", header + b"\r\n" + b"\r\n".join(rows[:3]) + b"\r\n")
        ids = []
        for k in range(3):
            jid = f"sched-test-{k}-{os.getpid()}"
            s = broker_job(c, jid, "nightly.csv", "Nightly students/ä")
            check(s, "complete", counts={"unchanged": 3}, read=3)
            ids.append(jid)
        arch = os.path.join(c.data, "archive")
        folders = sorted(os.listdir(arch))
        sched = [f for f in folders if f.startswith("Nightly_students_")]
        assert len(sched) == 1 and "adhoc" in folders, folders
        kept = sorted(os.listdir(os.path.join(arch, sched[0])))
        assert len(kept) == 2, kept
        assert ids[1] in kept[0] and ids[2] in kept[1] and kept[1].endswith("_nightly.csv"), kept
        assert open(os.path.join(arch, sched[0], kept[1]), "rb").read() == open(os.path.join(imp, "nightly.csv"), "rb").read()
        # a scheduled file (its exporter may rewrite it in place) is copied, never linked
        st = os.stat(os.path.join(arch, sched[0], kept[1]))
        assert st.st_nlink == 1 and st.st_ino != os.stat(os.path.join(imp, "nightly.csv")).st_ino, st
        adhoc = sorted(os.listdir(os.path.join(arch, "adhoc")))
        assert len(adhoc) == 2 and adhoc[1].endswith("_future.csv"), adhoc


@test
def archive_keeps_the_last_copies_of_run_now_jobs():
    """Every run above kept a copy of its input; the default archive_keep
    (7) copies remain in archive/adhoc, the newest being the last file run."""
    c = cluster()
    adhoc = os.path.join(c.data, "import", "adhoc")
    before = set(os.listdir(adhoc))
    for _ in range(8):
        s = c.run(corpus("line-ends-lf.csv"), PROFILE)
    d = os.path.join(c.data, "archive", "adhoc")
    kept = sorted(os.listdir(d))
    assert len(kept) == 7, kept
    assert s["job_id"] in kept[-1] and kept[-1].endswith("line-ends-lf.csv"), kept
    assert open(os.path.join(d, kept[-1]), "rb").read() == open(corpus("line-ends-lf.csv"), "rb").read()
    # a run-now's file is patronctl's own copy in import/adhoc/: the archive keeps it
    # (a link to that very file while the job runs: test_safety's held job), read-only;
    # once a job is done its copy there is removed, so run-nows leave no file behind
    # beyond the archive's pruned copies
    deadline = time.time() + 10
    while set(os.listdir(adhoc)) - before and time.time() < deadline:
        time.sleep(0.1)
    assert set(os.listdir(adhoc)) - before == set(), sorted(os.listdir(adhoc))
    st = os.stat(os.path.join(d, kept[-1]))
    assert st.st_mode & 0o222 == 0 and st.st_nlink == 1, (oct(st.st_mode), st)


if __name__ == "__main__":
    main()
