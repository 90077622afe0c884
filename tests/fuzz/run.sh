#!/bin/sh
# run.sh SECONDS: builds the csvscan fuzzer and runs it for SECONDS on a copy of the seed corpus; non-zero on a finding.
# Environment: FUZZ_WORK (work folder, default a new temp dir; kept on a
# finding so the crash input can be read), FUZZ_MAX_LEN (default 4096).
set -eu
if [ $# -ne 1 ]; then
    echo "usage: $0 SECONDS" >&2
    exit 2
fi
secs=$1
here=$(cd "$(dirname "$0")" && pwd)
work=${FUZZ_WORK:-$(mktemp -d /tmp/fuzz_csvscan.XXXXXX)}
mkdir -p "$work/corpus" "$work/artifacts"
"$here/build.sh" "$work"
cp "$here"/corpus/* "$work/corpus/"
set +e
"$work/fuzz_csvscan" -max_total_time="$secs" -max_len="${FUZZ_MAX_LEN:-4096}" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
    "$work/corpus" 2>"$work/fuzz.log"
rc=$?
set -e
grep -E "^#[0-9]+[[:space:]]+DONE|^Done |^stat::|ERROR|SUMMARY|fuzz_csvscan:" "$work/fuzz.log" >&2 || true
if [ $rc -ne 0 ]; then
    echo "fuzz_csvscan: finding (exit $rc); inputs in $work/artifacts, log $work/fuzz.log" >&2
    exit 1
fi
if [ -z "${FUZZ_WORK:-}" ]; then
    rm -rf "$work"
fi
echo "fuzz_csvscan: no finding in ${secs}s" >&2
