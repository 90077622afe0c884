#!/usr/bin/env python3
"""make_small.py: writes the small hostile input files of tests/corpus/ (the
files are committed; this script shows how each was made and remakes them:
`python3 tests/corpus/make_small.py`). Every file is built from records of
the repository's sample district (sample/day1.csv, windows-1252, CRLF, made by
tools/gen_patrons.py), so a store loaded from that sample is the base every
case is compared against.
The expected outcome of each file is asserted in
tests/integration/test_hostile.py; docs/INPUT.md is the table of outcomes.
The large files (10 MB field, 10,000 columns, big binary) are made at test
time by make_large.py."""
import csv
import io
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLE = os.environ.get("SAMPLE_DIR", os.path.join(HERE, "..", "..", "sample"))

# Columns of the sample (0-based): 0 district_id, 2 last_name, 3 first_name,
# 9 homeroom, 17 address1, 21 user_defined_1.
LAST, FIRST, HOMEROOM, ADDRESS1, UDF1 = 2, 3, 9, 17, 21


def sample():
    text = open(os.path.join(SAMPLE, "day1.csv"), encoding="cp1252", newline="").read()
    rows = list(csv.reader(io.StringIO(text, newline="")))
    return rows[0], [r for r in rows[1:] if r]


HEADER, ROWS = sample()
# Records needing no quotes at all, from patrons no other case uses (each
# case's records are its own, so cases can run in any order on one store).
PLAIN = [r for r in ROWS[700:] if not any(ch in c for c in r for ch in ',"\r\n')]


def line(fields, sep=","):
    """One CSV line (no line end), quoting as Excel does."""
    out = io.StringIO()
    csv.writer(out, delimiter=sep, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL).writerow(fields)
    return out.getvalue()[:-2]


def with_field(row, i, value):
    r = list(row)
    r[i] = value
    return r


def text(rows, header=True, end="\r\n", final=True):
    lines = ([line(HEADER)] if header else []) + [r if isinstance(r, str) else line(r) for r in rows]
    return end.join(lines) + (end if final else "")


def put(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


def main():
    R = ROWS
    # ---- encodings: each changes one patron's last name ----
    put("enc-cp1252.csv", text([with_field(r, LAST, "Núñez–Œuvre €") if i == 3 else r
                                for i, r in enumerate(R[0:20])]).encode("cp1252"))
    put("enc-latin1.csv", text([with_field(r, LAST, "Þórsdóttir-Ñ") if i == 1 else r
                                for i, r in enumerate(R[20:40])]).encode("latin-1"))
    put("enc-macroman.csv", text([with_field(r, LAST, "Müller-Çelik") if i == 2 else r
                                  for i, r in enumerate(R[40:60])]).encode("mac_roman"))
    put("enc-utf8.csv", text([with_field(r, LAST, "Nguyễn-Łukasz") if i == 3 else r
                              for i, r in enumerate(R[60:80])]).encode("utf-8"))
    put("enc-utf8-bom.csv", b"\xef\xbb\xbf" + text([with_field(r, LAST, "Øyvind-Ćosić") if i == 4 else r
                                                     for i, r in enumerate(R[80:100])]).encode("utf-8"))
    put("enc-utf16le-bom.csv", b"\xff\xfe" + text([with_field(r, LAST, "李-Zhang") if i == 5 else r
                                                   for i, r in enumerate(R[100:120])]).encode("utf-16-le"))
    put("enc-utf16be-bom.csv", b"\xfe\xff" + text([with_field(r, LAST, "Παπαδόπουλος") if i == 6 else r
                                                   for i, r in enumerate(R[120:140])]).encode("utf-16-be"))
    put("enc-utf16le-bom-named.csv", b"\xff\xfe" + text([with_field(r, LAST, "Ибрагимова") if i == 1 else r
                                                         for i, r in enumerate(R[140:160])]).encode("utf-16-le"))
    # a byte-order mark that contradicts the configured encoding wins
    put("bom-utf8-in-cp1252.csv", b"\xef\xbb\xbf" + text([with_field(r, LAST, "Đorđević") if i == 2 else r
                                                           for i, r in enumerate(R[160:180])]).encode("utf-8"))
    put("bom-utf16le-in-cp1252.csv", b"\xff\xfe" + text([with_field(r, LAST, "Ōtake") if i == 3 else r
                                                         for i, r in enumerate(R[180:200])]).encode("utf-16-le"))
    put("bom-utf16be-in-utf8.csv", b"\xfe\xff" + text([with_field(r, LAST, "Šťastný") if i == 1 else r
                                                       for i, r in enumerate(R[200:220])]).encode("utf-16-be"))
    put("utf16-nobom.csv", text([with_field(r, LAST, "Ærø") if i == 2 else r
                                 for i, r in enumerate(R[220:240])]).encode("utf-16-be"))
    put("utf16le-nobom-as-cp1252.csv", text(R[220:240]).encode("utf-16-le"))
    # ---- bytes invalid in the encoding ----
    data = text(R[240:260]).encode("cp1252")
    i = data.index(line(R[245]).encode("cp1252"))
    put("invalid-cp1252.csv", data[:i + 12] + b"\x81" + data[i + 12:])          # line 7
    data = text(R[260:280]).encode("utf-8")
    i = data.index(line(R[270]).encode("utf-8"))
    data = data[:i + 12] + b"\xc3\x28" + data[i + 12:]                          # line 12: bad continuation
    i = data.index(line(R[275]).encode("utf-8"))
    put("invalid-utf8.csv", data[:i + 12] + b"\xc0\xaf" + data[i + 12:])        # line 17: overlong
    put("utf8-cut-at-end.csv", text(R[280:300], final=False).encode("utf-8") + b"\xe2\x82")
    accented = [r for r in R if any(ord(ch) > 127 for ch in line(r))][:20]
    put("cp1252-read-as-utf8.csv", text(accented).encode("cp1252"))
    # ---- CSV shapes ----
    rows = list(R[300:320])
    rows[3] = with_field(rows[3], HOMEROOM, 'Room 12, "B" wing')
    rows[5] = with_field(rows[5], ADDRESS1, "Apt 4\r\nBuilding C")
    rows[7] = with_field(rows[7], UDF1, "two\nlines")
    rows.insert(10, line(R[310][:8]))       # line 14 (two breaks above); too short to supersede line 15
    put("quoted-fields.csv", text(rows).encode("cp1252"))
    put("line-ends-lf.csv", text([with_field(r, FIRST, "Zoë") if i == 5 else r
                                  for i, r in enumerate(R[320:340])], end="\n").encode("cp1252"))
    put("line-ends-cr.csv", text([with_field(r, FIRST, "Renée") if i == 1 else r
                                  for i, r in enumerate(R[340:360])], end="\r").encode("cp1252"))
    rows = [line(HEADER)] + [line(r) for r in R[360:380]]
    rows.insert(11, line(R[370][:5]))                                           # line 12
    ends = ["\r\n", "\n", "\r"]
    put("line-ends-mixed.csv", "".join(x + ends[k % 3] for k, x in enumerate(rows)).encode("cp1252"))
    put("no-final-newline.csv", text([with_field(r, LAST, "Last-Line") if i == 19 else r
                                      for i, r in enumerate(R[380:400])], final=False).encode("cp1252"))
    # records on lines 4, 6, 8, 10-11 (R[403]'s address holds a line break), 13, ... 23
    rows = [line(HEADER), "", ""]                                               # lines 1-3
    for r in R[400:410]:
        rows += [line(r), "   \t"]
    rows += [line(R[410][:3])]                                                  # line 25
    rows += ["", "  ", ""]
    put("blank-lines.csv", "\r\n".join(rows).encode("cp1252") + b"\r\n\r\n")
    put("trailing-spaces.csv", text(["  " + ",".join(f + "  " if f else f for f in r) + "   "
                                     for r in PLAIN[0:20]]).encode("cp1252"))
    put("too-few-fields.csv", text([r[:10] if i == 5 else r for i, r in enumerate(R[420:440])]).encode("cp1252"))
    put("too-many-fields.csv", text([r + ["x", "y", "z"] if i == 10 else r
                                     for i, r in enumerate(R[440:460])]).encode("cp1252"))
    put("nul-byte.csv", text([with_field(r, LAST, "Sm\0ith") if i == 10 else r
                              for i, r in enumerate(PLAIN[20:40])]).encode("cp1252"))
    rows = list(PLAIN[40:60])
    rows[4] = line(rows[4]).replace(",", ',"', 2).replace(',"', ",", 1)       # line 6: `,"Lastname` never closed
    put("unterminated-midfile.csv", text(rows).encode("cp1252"))
    put("unterminated-last-line.csv", text(R[480:500] + ['99999999,"Unfinished']).encode("cp1252"))
    put("quote-in-unquoted-field.csv", text([with_field(r, LAST, 'O"Brien') if i == 5 else r
                                             for i, r in enumerate(PLAIN[60:80])]).encode("cp1252").replace(
                                                 b'"O""Brien"', b'O"Brien'))
    rows = list(PLAIN[80:100])
    rows[5] = line(rows[5]).replace(",", ',"Room"5,', 1)                       # line 7: "Room"5 reopens the quote
    rows[6] = line(rows[6]) + ',"closes"'                                      # line 8: quotes balance again
    put("quote-reopen.csv", text(rows).encode("cp1252"))
    # line 22 supersedes line 7; line 23 is too short to supersede line 12
    put("duplicates.csv", text(R[560:580] + [with_field(R[565], FIRST, "Later"), R[570][:6]]).encode("cp1252"))
    put("semicolons.csv", text([line(r, ";") for r in PLAIN[100:120]]).encode("cp1252"))
    rows = [line(HEADER)] + [""] * 5000 + [line(with_field(R[600], FIRST, "Late")), line(R[601][:4])]
    put("many-blank-lines.csv", "\r\n".join(rows).encode("cp1252") + b"\r\n")   # records on 5002, 5003
    put("control-chars.csv", text([with_field(r, UDF1, "bell\x07esc\x1b") if i == 4 else r
                                   for i, r in enumerate(PLAIN[120:140])]).encode("cp1252"))
    # ---- files with no records ----
    put("empty.csv", b"")
    put("header-only.csv", (line(HEADER) + "\r\n").encode("cp1252"))
    put("header-only-no-newline.csv", line(HEADER).encode("cp1252"))
    put("whitespace-only.csv", b"\r\n   \r\n\t\r\n\n\r")
    put("bom-only.csv", b"\xef\xbb\xbf")
    # ---- not text at all ----
    rnd = random.Random(4)
    blob = bytes(rnd.getrandbits(8) for _ in range(6000))
    put("binary-png.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" + blob)
    put("binary-zip.xlsx", b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00" + blob)
    put("binary-gzip.csv.gz", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + blob)
    put("binary-pdf.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Length 6000 >>\nstream\n" + blob +
        b"\nendstream\nendobj\n%%EOF\n")
    put("binary-elf", b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + blob)


if __name__ == "__main__":
    main()
