#!/usr/bin/env bash
# tapeloop's recurrent layers next to PyTorch's, one training step (forward, loss = Σ out ⊙ R,
# backward), measured side by side in one run, and printed as a markdown table.
#
# For each configuration of the issue (tiny, small, medium, long), ROUNDS rounds; in each round,
# for each cell (rnn, lstm, gru, lstm-custom), `tapeloop bench --json` and
# benches/torch_reference.py run back to back on the same case (which one goes first alternates
# by round), so both see the same load. Before each pair the script waits until the machine is
# quiet (below QUIET_BUSY of the CPU busy over a second, for at most MAX_WAIT seconds) and
# records how busy it was. The table gives, per case, the median over rounds of each side's
# median step time, their ratio, the ratio of the best (minimum) step times, and tapeloop's
# GFLOP/s at its median. `lstm-custom` is tapeloop's `--custom` cell against PyTorch's
# Python-loop custom cell, and also against tapeloop's built-in LSTM of the same rounds.
#
#   cargo build --release            # with CARGO_TARGET_DIR=/work/target-perf
#   benches/compare_torch.sh         # ROUNDS=3; raw JSON lines in $RESULTS
#
# Environment: TAPELOOP (the binary), PYTHON (with torch), ROUNDS, MAX_WAIT, QUIET_BUSY,
# CONFIGS (a subset of "tiny small medium long"), CELLS, RESULTS (where raw lines go);
# SUMMARY_ONLY=1 only prints the table of an existing RESULTS file.
# Timings on a shared 2-core VM are noisy: read the ratios, not the absolute numbers.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TAPELOOP="${TAPELOOP:-${CARGO_TARGET_DIR:-$ROOT/target}/release/tapeloop}"
PYTHON="${PYTHON:-/work/venv-torch/bin/python}"
ROUNDS="${ROUNDS:-3}"
MAX_WAIT="${MAX_WAIT:-10}"
QUIET_BUSY="${QUIET_BUSY:-0.5}"
CONFIGS="${CONFIGS:-tiny small medium long}"
CELLS="${CELLS:-rnn lstm gru lstm-custom}"
RESULTS="${RESULTS:-$(mktemp /tmp/compare_torch.XXXXXX.jsonl)}"

# name: T B I H warm-up iterations (fewer for the expensive ones): the whole run takes about
# 6 minutes on an idle machine, over 30 on a loaded one (PyTorch slows down most).
declare -A SHAPE=(
  [tiny]="20 1 16 16 20 100"
  [small]="50 32 128 128 3 10"
  [medium]="100 64 512 512 1 3"
  [long]="1000 16 128 128 1 3"
)

busy_fraction() {
  local a b
  a=($(head -1 /proc/stat))
  sleep 1
  b=($(head -1 /proc/stat))
  local idle=$(((b[4] + b[5]) - (a[4] + a[5]))) total=0 i
  for i in 1 2 3 4 5 6 7 8 9 10; do total=$((total + b[i] - a[i])); done
  awk -v idle="$idle" -v total="$total" 'BEGIN { printf "%.2f", 1 - idle / (total > 0 ? total : 1) }'
}

wait_for_quiet() {
  local start=$SECONDS busy
  while true; do
    busy=$(busy_fraction)
    if awk -v b="$busy" -v q="$QUIET_BUSY" 'BEGIN { exit !(b < q) }' || ((SECONDS - start >= MAX_WAIT)); then
      echo "$busy"
      return
    fi
  done
}

run_tapeloop() { # config cell
  local shape=(${SHAPE[$1]}) custom=() cell=$2
  if [[ $cell == lstm-custom ]]; then custom=(--custom); cell=lstm; fi
  "$TAPELOOP" bench --cell "$cell" "${custom[@]}" --seq-len "${shape[0]}" --batch "${shape[1]}" \
    --input "${shape[2]}" --hidden "${shape[3]}" --warmup "${shape[4]}" --iterations "${shape[5]}" --json
}

run_torch() { # config cell
  local shape=(${SHAPE[$1]})
  "$PYTHON" "$ROOT/benches/torch_reference.py" --config "$1" --cell "$2" \
    --warmup "${shape[4]}" --iterations "${shape[5]}"
}

record() { # impl config cell round busy < json
  jq -c --arg impl "$1" --arg config "$2" --arg cell "$3" --argjson round "$4" --argjson busy "$5" \
    '. + {impl: $impl, config: $config, cell: $cell, round: $round, busy_before: $busy}' >>"$RESULTS"
}

if [[ "${SUMMARY_ONLY:-0}" != 1 ]]; then
echo "tapeloop: $TAPELOOP ($(cd "$ROOT" && git rev-parse --short HEAD)); torch: $("$PYTHON" -c 'import torch; print(torch.__version__)')" >&2
echo "raw results: $RESULTS" >&2
start=$SECONDS
for config in $CONFIGS; do
  for ((round = 1; round <= ROUNDS; round++)); do
    for cell in $CELLS; do
      busy=$(wait_for_quiet)
      echo "[$((SECONDS - start)) s] $config $cell round $round (busy $busy)" >&2
      if ((round % 2 == 1)); then
        run_tapeloop "$config" "$cell" | record tapeloop "$config" "$cell" "$round" "$busy"
        run_torch "$config" "$cell" | record pytorch "$config" "$cell" "$round" "$busy"
      else
        run_torch "$config" "$cell" | record pytorch "$config" "$cell" "$round" "$busy"
        run_tapeloop "$config" "$cell" | record tapeloop "$config" "$cell" "$round" "$busy"
      fi
    done
  done
done
echo "done in $((SECONDS - start)) s" >&2
fi

"$PYTHON" - "$RESULTS" <<'EOF'
import json, statistics, sys
from collections import defaultdict

rows = [json.loads(line) for line in open(sys.argv[1])]
runs = defaultdict(list)
for r in rows:
    runs[r["config"], r["cell"], r["impl"]].append(r)

# The issue's targets: tapeloop/PyTorch forward+backward.
TARGETS = {
    ("tiny", "rnn"): 0.3, ("tiny", "lstm"): 0.3, ("tiny", "gru"): 0.3,
    ("small", "lstm"): 0.9, ("small", "rnn"): 0.5, ("small", "gru"): 0.5,
    ("medium", "lstm"): 0.8, ("medium", "rnn"): 0.6, ("medium", "gru"): 0.6,
}
CUSTOM_VS_TORCH, CUSTOM_VS_BUILTIN = 0.3, 1.25

def med(values):
    return statistics.median(values)

def verdict(ratio, target, best=None):
    """Met or missed by the medians; with `best` (the ratio of minimum times), say when the two
    disagree: under load PyTorch's OpenMP threads stall far more than its best case shows."""
    if target is None:
        return "—"
    text = "met" if ratio <= target else f"missed by {100 * (ratio / target - 1):.1f}%"
    if best is not None and (best <= target) != (ratio <= target):
        text += f"; by minimum times {'met' if best <= target else f'missed by {100 * (best / target - 1):.1f}%'}"
    return f"≤ {target}: {text}"

print("| config | cell | tapeloop fwd ms | PyTorch fwd ms | tapeloop fwd+bwd ms | PyTorch fwd+bwd ms "
      "| ratio (median) | ratio (min) | tapeloop GFLOP/s | target | rounds | busy before |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
configs = list(dict.fromkeys(r["config"] for r in rows))
cells = list(dict.fromkeys(r["cell"] for r in rows))
notes = []
for config in configs:
    for cell in cells:
        tl, pt = runs.get((config, cell, "tapeloop")), runs.get((config, cell, "pytorch"))
        if not tl or not pt:
            continue
        tl_step = med([r["step_median_ms"] for r in tl])
        pt_step = med([r["step_median_ms"] for r in pt])
        tl_fwd = med([r["forward_median_ms"] for r in tl])
        pt_fwd = med([r["forward_median_ms"] for r in pt])
        tl_min = min(r["step_min_ms"] for r in tl)
        pt_min = min(r["step_min_ms"] for r in pt)
        gflops = med([r["gflops"] for r in tl])
        ratio = tl_step / pt_step
        target = CUSTOM_VS_TORCH if cell == "lstm-custom" else TARGETS.get((config, cell))
        busy = med([r["busy_before"] for r in tl])
        print(f"| {config} | {cell} | {tl_fwd:.3g} | {pt_fwd:.3g} | {tl_step:.3g} | {pt_step:.3g} "
              f"| **{ratio:.2f}** | {tl_min / pt_min:.2f} | {gflops:.1f} | {verdict(ratio, target, tl_min / pt_min)} "
              f"| {len(tl)} | {busy:.2f} |")
        if cell == "lstm-custom" and runs.get((config, "lstm", "tapeloop")):
            builtin = runs[config, "lstm", "tapeloop"]
            vs = tl_step / med([r["step_median_ms"] for r in builtin])
            by_round = {r["round"]: r["step_median_ms"] for r in builtin}
            per_round = med([r["step_median_ms"] / by_round[r["round"]] for r in tl if r["round"] in by_round])
            best = tl_min / min(r["step_min_ms"] for r in builtin)
            notes.append(f"| {config} | {vs:.2f} | {per_round:.2f} | {best:.2f} "
                         f"| {verdict(vs, CUSTOM_VS_BUILTIN, best)} |")
busy_pairs = sum(1 for r in rows if r["impl"] == "tapeloop" and r["busy_before"] >= 0.5)
if busy_pairs:
    print()
    print(f"**Warning:** {busy_pairs} of {sum(1 for r in rows if r['impl'] == 'tapeloop')} pairs started "
          "on a busy machine (≥ 50% CPU). Under contention PyTorch's OpenMP threads slow down "
          "many times more than tapeloop's, so those ratios flatter tapeloop: rerun on an idle machine.")
if notes:
    print()
    print("| config | tapeloop custom / built-in LSTM (medians) | median of per-round ratios | by minimum times | target |")
    print("| --- | ---: | ---: | ---: | --- |")
    print("\n".join(notes))
EOF
