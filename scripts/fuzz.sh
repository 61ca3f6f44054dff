#!/usr/bin/env bash
# Fuzz every reader of untrusted files: the program file (libFuzzer, clang, ASan + UBSan,
# then the simulator on what loads) and the mil backend's readers (atheris: MIL text, Model
# protobuf, weight blob, package manifest). Each starts from fuzz/corpus/<target> (copied:
# the repository's corpus only changes with --update-corpus).
#
#   bash scripts/fuzz.sh                    # 60 s per target (CI)
#   FUZZ_SECONDS=600 bash scripts/fuzz.sh   # longer
#   FUZZ_RUNS=1000000 bash scripts/fuzz.sh  # a fixed number of executions per target
# Limits: no allocation over 256 MiB, 10 s per input. Exits 1 on any crash, leak or hang.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${VENV:-$ROOT/.venv}"
. "$VENV/bin/activate"
SECONDS_PER="${FUZZ_SECONDS:-60}"
RUNS="${FUZZ_RUNS:-}"
UPDATE=0; [ "${1:-}" = "--update-corpus" ] && UPDATE=1
LIMIT="-runs=${RUNS:--1} -max_total_time=$([ -n "$RUNS" ] && echo 0 || echo "$SECONDS_PER") -timeout=10 -rss_limit_mb=4096 -print_final_stats=1"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
LOGS="${FUZZ_LOGS:-$ROOT/build/fuzz-logs}"
mkdir -p "$LOGS"

# The ASan + UBSan build scripts/sanitize.sh made (nothing to compile after it).
bash scripts/asan-build.sh "$LOGS/build.log" fuzz_program_file || { tail -20 "$LOGS/build.log"; exit 2; }
python -c "import atheris" 2>/dev/null || python -m pip install -q "atheris>=2.3"

status=0
run() {  # name, command...
  local name="$1"; shift
  mkdir -p "$WORK/$name"
  cp "fuzz/corpus/$name"/* "$WORK/$name/"
  if ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 UBSAN_OPTIONS=halt_on_error=1 \
      "$@" "$WORK/$name" $LIMIT -malloc_limit_mb=256 -artifact_prefix="$LOGS/$name-" > "$LOGS/$name.log" 2>&1; then
    result="ok"
  else
    result="FAILED (see $LOGS/$name.log)"; status=1
  fi
  local execs; execs=$(grep -o 'number_of_executed_units: [0-9]*' "$LOGS/$name.log" | tail -1 | awk '{print $2}')
  local peak; peak=$(grep 'peak_rss_mb:' "$LOGS/$name.log" | tail -1 | awk '{print $2}')
  printf 'fuzz %-13s %10s executions, peak RSS %5s MiB: %s\n' "$name" "${execs:-0}" "${peak:-?}" "$result"
  if [ "$UPDATE" = 1 ] && [ "$result" = ok ]; then  # keep a small minimised corpus
    rm -rf "$WORK/$name.min" && mkdir -p "$WORK/$name.min"
    "$@" -merge=1 "$WORK/$name.min" "$WORK/$name" > /dev/null 2>&1 || true
    ls "$WORK/$name.min" | head -200 | while read -r f; do cp "$WORK/$name.min/$f" "fuzz/corpus/$name/"; done
  fi
}
run program_file ./build/asan/fuzz_program_file
run mil_text python fuzz/fuzz_mil.py text
run mil_proto python fuzz/fuzz_mil.py proto
run mil_blob python fuzz/fuzz_mil.py blob
run manifest python fuzz/fuzz_mil.py manifest
exit $status
