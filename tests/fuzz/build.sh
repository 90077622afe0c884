#!/bin/sh
# build.sh OUTDIR: builds the csvscan libFuzzer target (clang, ASan+UBSan) as OUTDIR/fuzz_csvscan.
set -eu
if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
out=$1
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mkdir -p "$out"
# libcsv comes from the system (-lcsv): it is the reference, not instrumented.
${CLANG:-clang} -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
    -Wall -Wextra -Werror -Wno-unused-parameter \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I"$root/lib" \
    "$here/fuzz_csvscan.c" "$root/lib/csvscan.c" "$root/lib/util.c" \
    -lcsv -o "$out/fuzz_csvscan"
