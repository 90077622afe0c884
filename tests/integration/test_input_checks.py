"""Wrong input never ends in a silent success (issue 16), through a real
cluster: a file read as another encoding than the one given (a byte-order
mark, or the NUL bytes of UTF-16, contradicting it; UTF-16 given for bytes
without UTF-16's NULs) fails naming the file and the evidence, or — when
the BOM says for certain how to read it — is read right and ends
complete_with_errors with a warning; a file of text that yields no record
fails. Each with its exit status and the store compared before and after.
Then the text summary: its columns line up by display width whatever the
names (accents, combining marks, CJK), and missing patrons are listed as
"missing from the file", not as line 0. docs/INPUT.md has the rules."""
import csv
import io
import os
import re
import unicodedata

from harness import Cluster, SAMPLE, main, test

PROFILE = os.path.join(SAMPLE, "students.properties")
DAY1 = os.path.join(SAMPLE, "day1.csv")
EXIT = {"complete": 0, "complete_with_errors": 3, "failed": 1}


def sample_rows():
    with open(DAY1, encoding="cp1252", newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


HEADER, ROWS = sample_rows()
LAST = HEADER.index("last_name")
HOMEROOM = HEADER.index("homeroom")


def csv_text(header, rows):
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    if header is not None:
        w.writerow(header)
    w.writerows(rows)
    return out.getvalue()


_cluster = None


def cluster():
    """One cluster for the file's checks, its store loaded from the sample."""
    global _cluster
    if _cluster is None:
        c = Cluster("input-checks", workers=2)
        c.__enter__()
        _cluster = c
        import atexit
        atexit.register(lambda: c.__exit__(None, None, None))
        c.sites()
        s = c.run(DAY1, PROFILE, expect_exit=0)
        assert s["state"] == "complete" and s["counts"]["added"] == len(ROWS), s["counts"]
    return _cluster


def put(c, name, data):
    """The file in the cluster's import folder, where the SIS drops its exports."""
    d = os.path.join(c.data, "import")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def last_names(c, ids):
    con = c.db()
    got = dict(con.execute(f"SELECT district_id, last_name FROM patrons WHERE district_id IN "
                           f"({','.join('?' * len(ids))})", list(ids)).fetchall())
    con.close()
    return got


def run(c, path, state, *extra, read=None):
    """Run a file; its exit status and state exactly as expected. The summary."""
    s = c.run(path, PROFILE, *extra, expect_exit=EXIT[state])
    assert s["state"] == state, (s["state"], s["error"], s["notes"])
    if read is not None:
        assert s["counts"]["read"] == read, s["counts"]
    return s


def fails_unchanged(c, path, *extra, error=()):
    """A run that fails (exit 1) naming the file and each piece of `error`,
    reading no record and changing no patron."""
    before = c.dump()
    s = run(c, path, "failed", *extra, read=0)
    assert os.path.basename(path) in s["error"], f"the error does not name the file: {s['error']}"
    for e in error:
        assert e in s["error"], f"error '{s['error']}' lacks '{e}'"
    assert "no patron was changed" in s["error"], s["error"]
    assert c.dump() == before, "the store changed"
    return s


def renamed(rows, names):
    """Copies of rows with new last names."""
    out = []
    for r, n in zip(rows, names):
        r = list(r)
        r[LAST] = n
        out.append(r)
    return out


# ---- the encoding given against what the bytes say ----

@test
def utf16_given_for_a_windows_1252_file_fails():
    # The case: it used to end "complete", exit 0, 0 records read.
    c = cluster()
    rows = renamed(ROWS[:20], ["Núñez-Çelik"] + [r[LAST] for r in ROWS[1:20]])
    path = put(c, "cp1252-as-utf16.csv", csv_text(HEADER, rows).encode("cp1252"))
    for enc in ("utf-16", "UTF-16LE", "UTF-16BE"):
        shown = {"utf-16": "UTF-16"}.get(enc, enc)
        fails_unchanged(c, path, "--encoding", enc,
                        error=[f"does not read as {shown}: it has no byte order mark, and none of its first ",
                               "bytes is NUL, where UTF-16 text has a NUL in every second byte",
                               "give the encoding it is in (windows-1252? UTF-8?)"])


@test
def utf16_without_bom_given_as_another_encoding_fails():
    c = cluster()
    text = csv_text(HEADER, ROWS[20:40])
    # UTF-16LE read as windows-1252 (the profile's encoding): NUL in every second byte
    path = put(c, "utf16le-nobom.csv", text.encode("utf-16-le"))
    fails_unchanged(c, path, error=["is not a text file: line 1 holds NUL bytes: every second byte is NUL (the "
                                    "second of ", "the pattern of UTF-16LE",
                                    "UTF-16 without a byte-order mark? give its encoding as UTF-16LE, or UTF-16"])
    fails_unchanged(c, path, "--encoding", "UTF-8", error=["line 1 holds NUL bytes: every second byte is NUL"])
    # UTF-16BE given as UTF-16LE: the other byte order
    path = put(c, "utf16be-nobom.csv", text.encode("utf-16-be"))
    fails_unchanged(c, path, "--encoding", "UTF-16LE",
                    error=["does not read as UTF-16LE: it has no byte order mark, and every second byte is NUL "
                           "from the first on (the first byte of ", "the byte order of UTF-16BE",
                           "give its encoding as UTF-16BE (or UTF-16)"])


@test
def utf16_without_bom_is_read_in_the_byte_order_its_nuls_show():
    # "UTF-16" names no byte order: the NULs are the evidence, not a contradiction.
    c = cluster()
    rows = renamed(ROWS[40:60], ["李-Zhang"] + [r[LAST] for r in ROWS[41:60]])
    for codec, order in (("utf-16-le", "UTF-16LE"), ("utf-16-be", "UTF-16BE")):
        path = put(c, f"nobom-{codec}.csv", csv_text(HEADER, rows).encode(codec))
        s = run(c, path, "complete", "--encoding", "UTF-16", read=20)
        assert f"UTF-16 file without a byte-order mark; read as {order}" in s["notes"], s["notes"]
        assert not [n for n in s["notes"] if n.startswith("Warning: ")], s["notes"]
        assert last_names(c, [rows[0][0]]) == {rows[0][0]: "李-Zhang"}


@test
def a_bom_contradicting_the_encoding_is_followed_with_a_warning():
    c = cluster()
    cases = [
        # (file, bytes, --encoding given or None for the profile's windows-1252, BOM, "(or UTF-16)")
        ("utf16le-bom-as-cp1252.csv", "utf-16-le", None, "UTF-16LE", " (or UTF-16)"),
        ("utf16be-bom-as-cp1252.csv", "utf-16-be", "windows-1252", "UTF-16BE", " (or UTF-16)"),
        ("utf8-bom-as-cp1252.csv", "utf-8", None, "UTF-8", ""),
    ]
    base = 60
    for name, codec, given, bom, alt in cases:
        rows = renamed(ROWS[base:base + 20], [f"Ōtake-Nguyễn-{base}"] + [r[LAST] for r in ROWS[base + 1:base + 20]])
        base += 20
        path = put(c, name, "\ufeff".encode(codec) + csv_text(HEADER, rows).encode(codec))
        before = c.dump()
        s = run(c, path, "complete_with_errors", *(["--encoding", given] if given else []), read=20)
        want = (f"Warning: file '{s['file']}' begins with a {bom} byte order mark, so it was read as {bom}, not as "
                f"the windows-1252 it was given as. Give its encoding as {bom}{alt}.")
        assert want in s["notes"], (want, s["notes"])
        assert name in s["file"]
        # read right: exactly the renamed patron changed, as the BOM says
        assert s["counts"]["updated"] == 1 and s["counts"]["unchanged"] == 19, s["counts"]
        assert last_names(c, [rows[0][0]]) == {rows[0][0]: rows[0][LAST]}
        after = c.dump()
        assert len(after["patrons"]) == len(before["patrons"])
        # the text summary says it first, as a warning, not as a note
        text = c.ctl("job", "show", s["job_id"], check=False)
        assert text.returncode == 3, text.returncode
        head = text.stdout.splitlines()
        assert head[0].endswith(": complete_with_errors"), head[0]
        assert head[3] == want, head[:5]
        assert not any(ln.startswith("Note: Warning") for ln in head)
    # a BOM that agrees is no news: complete, exit 0, no warning
    rows = renamed(ROWS[base:base + 20], [f"Øyvind-{base}"] + [r[LAST] for r in ROWS[base + 1:base + 20]])
    path = put(c, "utf8-bom-as-utf8.csv", b"\xef\xbb\xbf" + csv_text(HEADER, rows).encode("utf-8"))
    s = run(c, path, "complete", "--encoding", "UTF-8", read=20)
    assert s["notes"] == [], s["notes"]


# ---- text that yields no record ----

def plain_rows(n):
    """Sample rows with no comma, quote or line break in any field."""
    out = [r for r in ROWS if not any(ch in f for f in r for ch in ',"\r\n')]
    assert len(out) >= n, len(out)
    return out[:n]


@test
def a_text_file_that_yields_no_record_fails():
    c = cluster()
    # A quote opening the header's first field and one closing the file:
    # the whole file is one record, the row to skip; it used to end
    # "complete" with "holds no records".
    for n in (400, 10):
        rows = plain_rows(n)
        text = '"' + ",".join(HEADER) + "\r\n" + "".join(",".join(r) + "\r\n" for r in rows)
        text = text[:-2] + '"\r\n'
        path = put(c, f"swallowed-{n}.csv", text.encode("cp1252"))
        size = os.path.getsize(path)
        s = fails_unchanged(c, path, error=[f"yields no records, though it holds {size} bytes: all of them read as "
                                            "its 1 row(s) to skip (the header)", f"on lines 1-{n + 1}, ",
                                            "Its line ends were not found: is its encoding right (windows-1252), "
                                            "or does a quote on line 1 swallow the lines after it?"])
        assert s["notes"] == [], s["notes"]
    # a header alone is still what it was: no records, complete, exit 0
    path = put(c, "header-alone.csv", csv_text(HEADER, []).encode("cp1252"))
    s = run(c, path, "complete", read=0)
    assert any("holds no records" in n for n in s["notes"]), s["notes"]


# ---- the text summary ----

def dwidth(ch):
    """Display columns of one character, by Python's unicodedata (not the
    C table under test)."""
    if unicodedata.category(ch) in ("Mn", "Me", "Cf") and ch != "\u00ad":
        return 0
    if ord(ch) < 0x20:
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def columns(line, starts):
    """The cells of a table row cut at the display columns `starts`."""
    cells = [""] * len(starts)
    col = 0
    for ch in line:
        i = max(k for k, s in enumerate(starts) if s <= col) if col >= starts[0] else 0
        cells[i] += ch
        col += dwidth(ch)
    return [x.strip() for x in cells]


def table(text, heads):
    """The table of a text summary: the header's columns (display columns
    where each head starts) and each row cut there."""
    lines = text.splitlines()
    h = next(i for i, ln in enumerate(lines) if all(x in ln for x in heads))
    header = lines[h]
    starts = []
    for x in heads:
        byte = header.index(x)
        starts.append(sum(dwidth(ch) for ch in header[:byte]))
    rows = [ln for ln in lines[h + 1:] if ln.strip()]
    return starts, rows


@test
def text_summary_columns_align_by_display_width():
    c = cluster()
    names = ["Núñez", "Zoe\u0308-Ærø", "李-Zhang", "Παπαδόπουλος", "Øyvind-Ćosić", "O'Brien", "김민준",
             "Nguyễn"]
    rows = renamed(ROWS[200:200 + len(names)], names)
    for k, r in enumerate(rows):
        r[HOMEROOM] = f"Rm Ω-{k} 字"       # a new homeroom each: an INFO line per patron
    path = put(c, "wide-names.csv", csv_text(HEADER, rows).encode("utf-8"))
    s = run(c, path, "complete", "--encoding", "UTF-8", read=len(rows))
    exc = s["exceptions"]
    assert len(exc) == len(rows), exc
    # the test means something: bytes and display columns differ
    assert any(len(e["name"].encode()) != sum(dwidth(ch) for ch in e["name"]) for e in exc)
    text = c.ctl("job", "show", s["job_id"]).stdout
    starts, trows = table(text, ["Line", "District ID", "Name", "Outcome", "Message"])
    assert len(trows) == len(exc), trows
    for ln, e in zip(trows, exc):
        got = columns(ln.rstrip("\n"), starts)
        assert got == [str(e["line"]), e["district_id"], e["name"], e["outcome"], e["message"]], (ln, got, e)
        # and each cell but the message ends one space before the next column
        cols = 0
        for k, ch in enumerate(ln):
            if cols in starts[1:]:
                assert ln[k - 1] == " ", (ln, cols)
            cols += dwidth(ch)
    # the jobs list, too
    jobs = c.ctl("jobs").stdout
    starts, jrows = table(jobs, ["JOB", "STATE", "STARTED", "RECORDS", "FILE"])
    assert jrows
    for ln in jrows:
        got = columns(ln, starts)
        assert got[1] in ("complete", "complete_with_errors", "failed"), (ln, got)
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d|-", got[2]), (ln, got)
        assert got[3].isdigit(), (ln, got)


@test
def missing_patrons_are_listed_as_missing_from_the_file():
    with Cluster("input-checks-missing", workers=2) as c:
        c.sites()
        assert c.run(DAY1, PROFILE, expect_exit=0)["state"] == "complete"
        gone = ROWS[100:105]
        gone_ids = {r[0] for r in gone}
        path = put(c, "five-left.csv",
                   csv_text(HEADER, [r for r in ROWS if r[0] not in gone_ids]).encode("cp1252"))
        s = run(c, path, "complete", "--inactivate-missing")
        assert s["counts"]["inactivated"] == 5, s["counts"]
        missing = [e for e in s["exceptions"] if e["line"] == 0]
        assert {e["district_id"] for e in missing} == gone_ids, missing
        text = c.ctl("job", "show", s["job_id"]).stdout
        starts, trows = table(text, ["Line", "District ID", "Name", "Outcome", "Message"])
        by_id = {}
        for ln in trows:
            cells = columns(ln, starts)
            assert cells[0] != "0", f"a line 0 in the summary: {ln}"
            by_id.setdefault(cells[1], []).append(cells)
        for did in gone_ids:
            rows = by_id.get(did, [])
            assert rows and all(r[0] == "missing from the file" for r in rows), (did, rows)
            assert any(r[3] == "INFO" and r[4].startswith("Patron inactivated; missing from the file since")
                       for r in rows), rows
        assert not re.search(r"(?m)^  0 ", text)


if __name__ == "__main__":
    main()
