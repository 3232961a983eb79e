#!/usr/bin/env bash
# Times a `divgpu --queries -` stream line by line, as a program talking to it through a pipe
# does: one line written, its answer read, then the next. Prints, for each line, the time from
# writing it to reading its answer; the first line's also counts loading the array and building
# the session (the GPU upload), unless SETTLE gives the process time to get ready first.
#
#   benches/queries.sh [LINES] [-- divgpu args...]
#
# Defaults: 10 lines, `--backend cpu` on the post's generated workload (1,000,000 values in
# [0, 10^6]). Line k is the post's 13 thresholds plus k - 1, so that no two lines are equal.
# DIVGPU selects the binary (default: target/release/divgpu under CARGO_TARGET_DIR).
# SETTLE=SECONDS waits that long before the first line (default 0). For the GPU on Mesa's
# lavapipe: WGPU_BACKEND=vulkan benches/queries.sh 10 -- --backend gpu
set -u

lines=${1:-10}
shift $(( $# >= 1 ? 1 : 0 ))
[ "${1:-}" = "--" ] && shift
if [ $# -gt 0 ]; then
    args=("$@")
else
    args=(--backend cpu)
fi
bin=${DIVGPU:-${CARGO_TARGET_DIR:-target}/release/divgpu}
[ -x "$bin" ] || { echo "queries: no binary at $bin (cargo build --release)" >&2; exit 2; }
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
err=$(mktemp)
trap 'rm -f "$err"' EXIT

post=(1 4 1 2 4 5 1 1 2 3 4 1 2)
echo "divgpu ${args[*]} --queries -   ($lines lines of ${#post[@]} thresholds)"
start=${EPOCHREALTIME/./}
coproc DIVGPU { exec "$bin" "${args[@]}" --queries - 2>"$err"; }
pid=$DIVGPU_PID
[ "${SETTLE:-0}" != 0 ] && sleep "$SETTLE"
for ((k = 1; k <= lines; k++)); do
    batch=()
    for m in "${post[@]}"; do batch+=($(( m * 100000 + k - 1 ))); done
    line=$(IFS=,; echo "${batch[*]}")
    sent=${EPOCHREALTIME/./}
    printf '%s\n' "$line" >&"${DIVGPU[1]}"
    if ! IFS= read -r answer <&"${DIVGPU[0]}"; then
        echo "queries: no answer to line $k" >&2
        cat "$err" >&2
        exit 1
    fi
    got=${EPOCHREALTIME/./}
    case $answer in
        *'"error"'*) echo "queries: line $k failed: $answer" >&2; exit 1 ;;
    esac
    ms=$(( (got - sent) / 10 ))
    since=$(( (got - start) / 10 ))
    printf 'line %3d: %6d.%02d ms   (answered %6d.%02d ms after the start)\n' \
        "$k" $(( ms / 100 )) $(( ms % 100 )) $(( since / 100 )) $(( since % 100 ))
done
exec {DIVGPU[1]}>&-
wait "$pid"
status=$?
cat "$err"
exit $status
