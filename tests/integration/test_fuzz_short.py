"""A short run of the csvscan libFuzzer target (tests/fuzz/run.sh) on its
seed corpus: the broker's record bounds and the workers' libcsv parse agree
on whatever the fuzzer makes, with ASan/UBSan watching. `make fuzz` runs it
longer (FUZZ_SECONDS). Skipped, saying why, only when clang cannot build a
libFuzzer binary here (`make deps` installs clang)."""
import os
import shutil
import subprocess
import tempfile

from harness import ROOT, WORK, main, test

SECONDS = int(os.environ.get("FUZZ_SHORT_SECONDS", "30"))


def libfuzzer_missing():
    """Why a libFuzzer binary cannot be built here, or None."""
    clang = os.environ.get("CLANG", "clang")
    if shutil.which(clang) is None:
        return f"{clang} not found"
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "t.c")
        with open(src, "w") as f:
            f.write("#include <stddef.h>\n#include <stdint.h>\n"
                    "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n")
        p = subprocess.run([clang, "-fsanitize=fuzzer", src, "-o", os.path.join(d, "t")],
                           capture_output=True, text=True)
        if p.returncode != 0:
            return f"{clang} cannot link -fsanitize=fuzzer: {p.stderr.strip()[:300]}"
    return None


@test
def fuzz_csvscan_short_run():
    # The fuzzer binary is the same clang build whatever the suite's build:
    # when the suite also runs its sanitized build, it runs there only.
    if os.environ.get("SANITIZED") != "1" and os.environ.get("SUITE_HAS_ASAN") == "1":
        print("  skip: runs in this suite's sanitized pass (the same fuzzer binary)")
        return
    why = libfuzzer_missing()
    if why:
        print(f"  skip: libFuzzer is not available ({why})")
        return
    work = os.path.join(WORK, "fuzz")
    shutil.rmtree(work, ignore_errors=True)
    env = dict(os.environ, FUZZ_WORK=work)
    # The fuzzer's own sanitizer report belongs in its log (run.sh prints
    # it), not in the suite's sanitizer folder.
    env.pop("ASAN_OPTIONS", None)
    env.pop("UBSAN_OPTIONS", None)
    p = subprocess.run([os.path.join(ROOT, "tests", "fuzz", "run.sh"), str(SECONDS)], env=env,
                       capture_output=True, text=True, timeout=SECONDS + 600)
    print(p.stderr.strip())
    assert p.returncode == 0, f"fuzz_csvscan exited {p.returncode}; inputs in {work}/artifacts"
    assert f"no finding in {SECONDS}s" in p.stderr, p.stderr[-2000:]


if __name__ == "__main__":
    main()
