#!/usr/bin/env bash
# Runs short GPU runs on llvmpipe (GL) many times while the machine is loaded, and counts
# the runs that did not end well: a non-zero exit, a signal, or stdout that is not one
# complete JSON report. A crash at exit after correct output (a teardown race between
# threads) shows up here and almost never in a single run.
#
#   benches/exit_stress.sh [RUNS] [BUSY_LOOPS] [-- divgpu args...]
#
# Defaults: 400 runs, 3 busy loops, `--backend gpu --size 20000 --json` with WGPU_BACKEND=gl.
# DIVGPU selects the binary (default: target/release/divgpu under CARGO_TARGET_DIR).
# Failing runs' stderr are kept in $KEEP (default: a temporary directory, printed).
# Exit status: 0 when every run succeeded, 1 otherwise.
set -u

runs=${1:-400}
busy=${2:-3}
shift $(( $# >= 2 ? 2 : $# ))
[ "${1:-}" = "--" ] && shift
if [ $# -gt 0 ]; then
    args=("$@")
else
    args=(--backend gpu --size 20000 --json)
fi
bin=${DIVGPU:-${CARGO_TARGET_DIR:-target}/release/divgpu}
[ -x "$bin" ] || { echo "exit_stress: no binary at $bin (cargo build --release)" >&2; exit 2; }
keep=${KEEP:-$(mktemp -d)}
export WGPU_BACKEND=${WGPU_BACKEND:-gl}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}

loops=()
cleanup() { for p in "${loops[@]}"; do kill "$p" 2>/dev/null; done; }
trap cleanup EXIT
for _ in $(seq "$busy"); do
    ( while :; do :; done ) &
    loops+=($!)
done

ok=0 failed=0 signalled=0 bad_output=0
declare -A codes=()
for i in $(seq "$runs"); do
    "$bin" "${args[@]}" >"$keep/out" 2>"$keep/err"
    rc=$?
    complete=1
    if [[ " ${args[*]} " == *" --json "* ]]; then
        # one JSON object on one line, ended by a newline
        [ "$(wc -l <"$keep/out")" = 1 ] && head -c 1 "$keep/out" | grep -q '{' \
            && tail -c 2 "$keep/out" | head -c 1 | grep -q '}' || complete=0
    fi
    if [ "$rc" = 0 ] && [ "$complete" = 1 ]; then
        ok=$((ok + 1))
        continue
    fi
    failed=$((failed + 1))
    codes[$rc]=$(( ${codes[$rc]:-0} + 1 ))
    [ "$rc" -gt 128 ] && signalled=$((signalled + 1))
    [ "$complete" = 0 ] && bad_output=$((bad_output + 1))
    cp "$keep/err" "$keep/run-$i.stderr"
    cp "$keep/out" "$keep/run-$i.stdout"
    if [ "$complete" = 0 ]; then
        echo "run $i: exit $rc, incomplete stdout" >&2
    else
        echo "run $i: exit $rc" >&2
    fi
done

echo "exit_stress: $runs runs of: $bin ${args[*]} (WGPU_BACKEND=$WGPU_BACKEND, $busy busy loops)"
echo "exit_stress: $ok ok, $failed failed ($signalled by a signal, $bad_output with incomplete stdout)"
for rc in "${!codes[@]}"; do
    echo "exit_stress:   exit $rc: ${codes[$rc]} runs"
done
[ "$failed" = 0 ] || echo "exit_stress: failing runs' output in $keep"
[ "$failed" = 0 ]
