#!/usr/bin/env bash
#! fuzz/run.sh: builds the fuzz targets once and runs each for a fixed time budget, keeping the
#! corpora under fuzz/corpus/<target>/ and appending each run's execution count to
#! fuzz/exec-counts.tsv (target, date, execs, seconds, result: ok or crash). Not part of CI.
#!
#! Usage: fuzz/run.sh [seconds-per-target] [target...]     (default 60 s, all targets)
#!        fuzz/run.sh --cmin [target...]                   (minimise the corpora, no fuzzing)
#!        fuzz/run.sh --totals                             (cumulative executions per target,
#!                                                          and since its last crash)
#!
#! The build holds the shared build lock (/tmp/arca-build.lock); the runs do not: they run one
#! job each under `nice -n 19`, so they only take idle CPU. Crashes land in
#! fuzz/artifacts/<target>/ and make the script exit non-zero after all targets ran.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
lock=/tmp/arca-build.lock
triple="$(rustc -vV | sed -n 's/^host: //p')"
bin_dir="$here/target/$triple/release"
log_dir="$here/target/run-logs"
tsv="$here/exec-counts.tsv"
all_targets=$(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^arca-fuzz$')

totals() {
    [ -f "$tsv" ] || { echo "no runs recorded yet"; return; }
    printf "%-16s %6s %14s %8s %14s\n" target runs executions seconds since-crash
    awk -F'\t' 'NR > 1 { e[$1] += $3; s[$1] += $4; r[$1]++; c[$1] = $5 == "crash" ? 0 : c[$1] + $3 }
        END { for (t in e) printf "%-16s %6d %14d %8d %14d\n", t, r[t], e[t], s[t], c[t] }' "$tsv" |
        sort
}

# Builds under the shared lock, unless every binary is newer than every source (the lock may be
# held for minutes by a test run elsewhere).
build() {
    local stale=0 t
    for t in $all_targets; do
        if [ ! -x "$bin_dir/$t" ] || [ -n "$(find ../crates/arca/src ../crates/arca/Cargo.toml \
            fuzz_targets Cargo.toml -newer "$bin_dir/$t" -print -quit)" ]; then
            stale=1
            break
        fi
    done
    [ $stale = 0 ] && return 0
    flock "$lock" cargo +nightly fuzz build --debug-assertions --sanitizer none "$@"
}

# libFuzzer's merge mode keeps the smallest set of inputs covering what the corpus covers (what
# `cargo fuzz cmin` does, with the binaries already built), by edges only, not hit counts: the
# committed corpora stay at a few MB in total.
cmin() {
    local t=$1 dir="$here/corpus/$1" new="$here/target/cmin/$1"
    rm -rf "$new" && mkdir -p "$new"
    if nice -n 19 "$bin_dir/$t" -merge=1 -use_counters=0 "$new" "$dir" >"$log_dir/$t.cmin.log" 2>&1; then
        rm -rf "$dir" && mv "$new" "$dir"
        echo "$t: corpus minimised to $(ls "$dir" | wc -l) inputs, $(du -sh "$dir" | cut -f1)"
    else
        echo "$t: cmin failed (see $log_dir/$t.cmin.log), corpus kept"
    fi
}

mkdir -p "$log_dir"
case "${1:-}" in
--totals)
    totals
    exit 0
    ;;
--cmin)
    shift
    targets="${*:-$all_targets}"
    build || exit 1
    for t in $targets; do cmin "$t"; done
    exit 0
    ;;
esac

secs="${1:-60}"
[ $# -gt 0 ] && shift
targets="${*:-$all_targets}"
build || exit 1

# Archive targets write a scratch file per input: on a tmpfs when there is one (much faster),
# never in the shared /tmp.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    export TMPDIR="/dev/shm/arca-fuzz-$$"
else
    export TMPDIR="$here/target/tmp"
fi
mkdir -p "$TMPDIR"
[ -f "$tsv" ] || printf 'target\tdate\texecs\tseconds\tresult\n' >"$tsv"
failed=""
for t in $targets; do
    mkdir -p "corpus/$t" "artifacts/$t"
    log="$log_dir/$t.log"
    start=$(date +%s)
    nice -n 19 "$bin_dir/$t" "corpus/$t" \
        -max_total_time="$secs" -print_final_stats=1 -timeout=30 -rss_limit_mb=2048 \
        -artifact_prefix="artifacts/$t/" >"$log" 2>&1
    rc=$?
    took=$(($(date +%s) - start))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    execs=${execs:-0}
    result=ok
    [ $rc -ne 0 ] && result=crash
    printf '%s\t%s\t%s\t%s\t%s\n' "$t" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$execs" "$took" \
        "$result" >>"$tsv"
    if [ $rc -ne 0 ]; then
        failed="$failed $t"
        echo "$t: CRASH after $execs executions (exit $rc), see $log and artifacts/$t/"
    else
        echo "$t: $execs executions in ${took}s ($((execs / (took > 0 ? took : 1)))/s)"
    fi
done
rm -rf "$TMPDIR"
echo
totals
if [ -n "$failed" ]; then
    echo "crashed:$failed"
    exit 1
fi
