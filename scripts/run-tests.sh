#!/bin/bash
# Runs every test suite (unit tests in the normal and the ASan+UBSan build,
# iotests, compat tests against QEMU's tools) and ends with one line:
# "N passed, N failed[, N skipped]". Exits non-zero when anything failed.
# Each suite is killed after QBLK_SUITE_TIMEOUT seconds (tests/bound.sh),
# which fails it.
BUILD=${1:-build}
ASAN_BUILD=${2:-build-asan}
cd "$(dirname "$0")/.." || exit 1
top=$PWD
. tests/bound.sh
pass=0 fail=0 skip=0
logdir=$(mktemp -d /tmp/qblk-check.XXXXXX)

# Adds the counts a suite printed as "... N passed, N failed[, N skipped]".
count_line() {
    local line=$1 p f s
    p=$(sed -nE 's/.*\b([0-9]+) passed.*/\1/p' <<<"$line")
    f=$(sed -nE 's/.*\b([0-9]+) failed.*/\1/p' <<<"$line")
    s=$(sed -nE 's/.*\b([0-9]+) skipped.*/\1/p' <<<"$line")
    pass=$((pass + ${p:-0})); fail=$((fail + ${f:-0})); skip=$((skip + ${s:-0}))
}

# GTest binaries speak TAP with --tap: count every test case.
run_unit() {
    local build=$1 label=$2 p=0 f=0 s=0
    for t in "$build"/tests/unit/test-*; do
        [ -f "$t" ] && [ -x "$t" ] || continue
        local name log rc
        name=$(basename "$t")
        log="$logdir/$label-$name.log"
        G_TEST_SRCDIR=$top timeout 600 "$t" --tap >"$log" 2>&1
        rc=$?
        local tp tf ts
        tp=$(grep -cE '^ok [0-9]+' "$log" | tr -d ' ')
        ts=$(grep -cE '^ok [0-9]+.*# SKIP' "$log" | tr -d ' ')
        tf=$(grep -cE '^not ok [0-9]+' "$log" | tr -d ' ')
        tp=$((tp - ts))
        if [ "$rc" -ne 0 ] && [ "$tf" -eq 0 ]; then
            tf=1    # crashed, sanitizer report, or timed out
        fi
        if grep -qE 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:' "$log"; then
            tf=$((tf + 1))
        fi
        if [ "$tf" -ne 0 ]; then
            echo "FAIL $label/$name (exit $rc):"
            grep -E '^not ok|ERROR|runtime error|Bail out|assertion' "$log" | head -20 | sed 's/^/    /'
        fi
        p=$((p + tp)); f=$((f + tf)); s=$((s + ts))
    done
    echo "unit tests ($label): $p passed, $f failed, $s skipped"
    pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
}

run_unit "$BUILD" normal
run_unit "$ASAN_BUILD" asan

# Each public header compiled alone (tests/headers/meson.build builds one
# program per header): one test per header of include/qblk and
# include/util; a header whose program is missing (it did not compile)
# fails, and so does a public header that includes block_int.h.
run_headers() {
    local build=$1 p=0 f=0 h exe
    for h in include/qblk/*.h include/util/*.h; do
        h=${h#include/}
        exe="$build/tests/headers/hdr-$(tr -c 'A-Za-z0-9\n' _ <<<"$h")"
        if [ -x "$exe" ] && "$exe"; then
            p=$((p + 1))
        else
            echo "FAIL header $h does not compile alone"
            f=$((f + 1))
        fi
    done
    if grep -l 'block_int\.h' include/qblk/block.h include/util/*.h; then
        echo "FAIL a public header includes block_int.h"
        f=$((f + 1))
    else
        p=$((p + 1))
    fi
    echo "header tests: $p passed, $f failed"
    pass=$((pass + p)); fail=$((fail + f))
}
run_headers "$BUILD"

# run_suite BUILD CMD...: one suite with BUILD's tools, bounded; adds the
# counts of its summary line. Shows what is not a plain "ok" line (failures
# with their details, skips, the summary). A suite that printed no summary,
# exited non-zero without counting a failure, or let a sanitizer report
# through counts one failure more.
run_suite() {
    local build=$1 out rc last shown
    shift
    shown="$*"
    [ ${#shown} -le 100 ] || shown="${shown:0:96} ..."
    echo "== $shown ($build)"
    out=$(QBLK_BUILD=$top/$build bounded "$QBLK_SUITE_TIMEOUT" "$@" 2>&1)
    rc=$?
    echo "$out" | grep -vE '^(\s*|ok [0-9]+ - [^#]*)$' | tail -n 60
    last=$(echo "$out" | grep -E '[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    if timed_out $rc; then
        echo "FAIL: $* timed out after $QBLK_SUITE_TIMEOUT s"
        fail=$((fail + 1))
    elif [ -z "$last" ]; then
        echo "FAIL: $* printed no summary (exit $rc)"
        fail=$((fail + 1))
    elif [ "$rc" -ne 0 ] && ! grep -qE '[1-9][0-9]* failed' <<<"$last"; then
        echo "FAIL: $* exited $rc"
        fail=$((fail + 1))
    elif grep -qE 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:' <<<"$out" &&
         ! grep -qE '[1-9][0-9]* failed' <<<"$last"; then
        echo "FAIL: $* let a sanitizer report through"
        fail=$((fail + 1))
    fi
    [ -z "$last" ] || count_line "$last"
}

# The shell suites run the tools of both builds: a sanitizer report in the
# ASan build's output makes its golden comparison fail.
for suite in "$BUILD tests/iotests/check -raw" "$BUILD tests/iotests/check -qed" \
             "$BUILD tests/iotests/check -qcow2" "$ASAN_BUILD tests/iotests/check -qcow2" \
             "$BUILD tests/compat/run" "$BUILD tests/compat/img-run" \
             "$BUILD tests/compat/img-random" "$BUILD tests/diff/run" \
             "$BUILD tests/compat/locking" \
             "$ASAN_BUILD tests/iotests/check -raw" "$ASAN_BUILD tests/iotests/check -qed" \
             "$ASAN_BUILD tests/compat/run" "$ASAN_BUILD tests/compat/img-run" \
             "$ASAN_BUILD tests/compat/img-random 10 30" \
             "$ASAN_BUILD tests/diff/run" \
             "$BUILD python3 tests/fuzz/never-worse.py $BUILD 1 40" \
             "$ASAN_BUILD python3 tests/fuzz/never-worse.py $ASAN_BUILD 1001 1015" \
             "$BUILD python3 tests/daemon/smoke.py $BUILD/qblk-storage-daemon" \
             "$ASAN_BUILD python3 tests/daemon/smoke.py $ASAN_BUILD/qblk-storage-daemon" \
             "$BUILD python3 tests/qmp/check" "$ASAN_BUILD python3 tests/qmp/check" \
             "$BUILD tests/nbd/run" "$ASAN_BUILD tests/nbd/run" \
             "$BUILD tests/nbd/libnbd-check --oracle --server qblk-nbd" \
             "$ASAN_BUILD tests/nbd/libnbd-check --oracle --server qblk-nbd" \
             "$BUILD tests/nbd/libnbd-check --oracle --server qblk-daemon" \
             "$ASAN_BUILD tests/nbd/libnbd-check --oracle --server qblk-daemon" \
             "$BUILD tests/nbd/load --server qblk-nbd" "$ASAN_BUILD tests/nbd/load --server qblk-nbd" \
             "$BUILD tests/nbd/load --server qblk-daemon" \
             "$ASAN_BUILD tests/nbd/load --server qblk-daemon" \
             "$BUILD tests/nbdclient/run" "$ASAN_BUILD tests/nbdclient/run" \
             "$BUILD tests/faults/sweep $BUILD --sample" \
             "$BUILD tests/faults/close-errors $BUILD" "$ASAN_BUILD tests/faults/close-errors $ASAN_BUILD" \
             "$BUILD tests/crash/run --sample" \
             "$BUILD tests/crash/torn-header" "$ASAN_BUILD tests/crash/torn-header" \
             "$BUILD tests/rbd/run" "$ASAN_BUILD tests/rbd/run" \
             "$BUILD tests/compat/amend-random" "$ASAN_BUILD tests/compat/amend-random 8" \
             "$BUILD tests/install/run"; do
    read -ra words <<<"$suite"
    run_suite "${words[@]}"
done

# The golden files were made with QEMU's tools: rerun them with QEMU's, so
# a golden file QEMU no longer agrees with shows up (the qblk-only tests are
# listed as skipped).
for fmt in raw qed qcow2; do
    if command -v qemu-img >/dev/null && command -v qemu-io >/dev/null; then
        run_suite "$BUILD" tests/iotests/check -oracle -$fmt
    else
        echo "== tests/iotests/check -oracle -$fmt: skipped, QEMU's qemu-img/qemu-io not installed"
        skip=$((skip + 1))
    fi
done

# The QMP goldens were made with qemu-storage-daemon 7.2: rerun them with it.
if [ -x /usr/bin/qemu-storage-daemon ]; then
    run_suite "$BUILD" python3 tests/qmp/check -oracle
else
    echo "== tests/qmp/check -oracle: skipped, QEMU's qemu-storage-daemon not installed"
    skip=$((skip + 1))
fi

# The fuzz targets' corpora, replayed by both builds, one test per file
# (libFuzzer itself runs with `make fuzz`, clang only). tests/fuzz/found
# holds inputs libFuzzer found that failed: replayed here as regressions,
# kept out of the corpus that seeds `make fuzz`.
shopt -s nullglob
for build in "$BUILD" "$ASAN_BUILD"; do
    for target in qed qcow2 nbd qmp; do
        run_suite "$build" "$build/tests/fuzz/fuzz-$target" tests/fuzz/corpus/$target/* \
            tests/fuzz/found/$target/*
    done
done
shopt -u nullglob

rm -rf "$logdir"
if [ "$skip" -gt 0 ]; then
    echo "$pass passed, $fail failed, $skip skipped"
else
    echo "$pass passed, $fail failed"
fi
[ "$fail" -eq 0 ]
