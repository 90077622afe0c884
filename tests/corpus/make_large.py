#!/usr/bin/env python3
"""make_large.py OUTDIR: writes the large hostile input files (too big to
commit) into OUTDIR, the same way every time:
  field-10mb.csv     20 sample records and, on line 12, one whose
                     user_defined_1 field is 10 MB (quoted, with commas)
  columns-10000.csv  20 sample records and, on line 12, one of 10,000 columns
  binary-big.bin     8 MB of pseudo-random bytes
tests/integration/test_hostile.py asserts what each does."""
import os
import random
import sys

sys.dont_write_bytecode = True  # nothing written into tests/corpus
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_small import HEADER, ROWS, UDF1, line, with_field  # noqa: E402


def write(outdir, name, data):
    path = os.path.join(outdir, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_large.py OUTDIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    R = ROWS
    big = ("0123456789, " * (10 * 1024 * 1024 // 12 + 1))[:10 * 1024 * 1024]
    rows = [line(HEADER)] + [line(r) for r in R[620:640]]
    rows.insert(11, line(with_field(R[640], UDF1, big)))
    write(out, "field-10mb.csv", ("\r\n".join(rows) + "\r\n").encode("cp1252"))
    rows = [line(HEADER)] + [line(r) for r in R[650:670]]
    rows.insert(11, ",".join([R[670][0]] + ["c%d" % i for i in range(1, 10000)]))
    write(out, "columns-10000.csv", ("\r\n".join(rows) + "\r\n").encode("cp1252"))
    rnd = random.Random(8)
    write(out, "binary-big.bin", rnd.randbytes(8 * 1024 * 1024))


if __name__ == "__main__":
    main()
