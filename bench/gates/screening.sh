#!/usr/bin/env bash
# Passage screening (0.5.2): the small reader screens the passages the accurate one would read on. Declared before
# any of its results (2026-12-08).
#
# What it is: where `mpnet` (alone, or as the cascade's second reader) is not settled by a question's best passage
# (early exit, 0.5.0), it reads the remaining passages. With screening, `minilm` reads them first (in the cascade it
# has already read them); a passage where minilm's best span beats its own no-answer score by less than the screen
# margin is not read by mpnet. The first passage is always read. QA_SCREEN_MARGIN overrides the calibrated value;
# -inf reads every passage (no screening).
#
# Gate S1 (the margin, calibration articles only): mpnet's engine F1 on SQuAD 2.0's calibration articles (all 779
#   questions, its calibrated threshold and exit margin, bf16) at screen margins -8, -6, -5, -4, -3, -2, -1, 0 and
#   without screening (-inf). The margin is the highest of them whose F1 is at least the F1 without screening minus
#   0.1. None: nothing ships.
# Gate S2 (article sets): with the chosen margin, `mpnet` and `auto` each score an F1 on bench/data/article_test_qa.jsonl
#   and on bench/data/article_final_qa.jsonl of at least their F1 without screening minus 1.0, and answer no more of
#   the unanswerable questions than without.
# Gate S3 (speed): warm p50 of `mpnet` on the article test set (bench/readers.py, 3 passes, bf16, idle) with
#   screening <= 0.9 x without; four runs alternated (without, with, without, with), each side the mean of its two p50s.
# Ships (the margin written into models/reader-mpnet/calibration.json as screen_margin) only if S1, S2 and S3 pass and
# the whole suite passes.
# Reported, not gated: SQuAD 2.0 held-out (odd articles) engine F1 of `mpnet` with and without screening (qa eval
# --squad2, its default sample of 150 + 150); `auto` and `mpnet` p50 on the article dev set; passages skipped.
#
# Steps: calibrate | article | latency | heldout | summary. Results: bench/results/screening/.
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 QA_USE_BF16=1
PY=.venv/bin/python
R=bench/results/screening
mkdir -p "$R"
step="${1:-all}"
on() { [[ $step == all || $step == "$1" ]]; }
GRID="-inf -8 -6 -5 -4 -3 -2 -1 0"
if on calibrate; then
  for m in $GRID; do
    [ -s "$R/calibration-mpnet-$m.json" ] || QA_SCREEN_MARGIN=$m $PY -m qa.training.squad2 --mode engine \
      --part calibration --reader mpnet --answerable 0 --unanswerable 0 --json "$R/calibration-mpnet-$m.json" > "$R/calibration-mpnet-$m.log" 2>&1
  done
  $PY - "$R" $GRID <<'PYEOF'
import json, sys
from pathlib import Path
r, grid = Path(sys.argv[1]), sys.argv[2:]
f1 = {m: json.loads((r / f"calibration-mpnet-{m}.json").read_text())["f1"] for m in grid}
base = f1["-inf"]
ok = [float(m) for m in grid if m != "-inf" and f1[m] >= base - 0.1]
lines = [f"calibration-articles engine F1 of mpnet by screen margin: {f1}", f"without screening: {base}",
         f"S1: {'margin ' + format(max(ok), 'g') if ok else 'FAIL: no margin keeps F1'}"]
(r / "margin.txt").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PYEOF
fi
margin() { sed -n 's/^S1: margin //p' "$R/margin.txt"; }
if on article; then
  m=$(margin); [ -n "$m" ] || { echo "S1 failed: no margin"; exit 1; }
  for set in article_test_qa article_final_qa; do
    for reader in mpnet auto; do
      [ -s "$R/$set-$reader-off.json" ] || QA_SCREEN_MARGIN=-inf $PY -m qa.cli eval bench/data/$set.jsonl \
        --reader $reader --json > "$R/$set-$reader-off.json"
      [ -s "$R/$set-$reader-on.json" ] || QA_SCREEN_MARGIN=$m $PY -m qa.cli eval bench/data/$set.jsonl \
        --reader $reader --json > "$R/$set-$reader-on.json"
    done
  done
fi
if on latency; then
  m=$(margin)
  i=0
  for side in off on off on; do
    i=$((i + 1))
    [ $side = on ] && v=$m || v=-inf
    QA_SCREEN_MARGIN=$v $PY bench/readers.py --readers mpnet --set bench/data/article_test_qa.jsonl \
      --repeats 3 --json "$R/latency-test-$i-$side.json" > "$R/latency-test-$i-$side.txt"
  done
  for side in off on; do
    [ $side = on ] && v=$m || v=-inf
    QA_SCREEN_MARGIN=$v $PY bench/readers.py --readers mpnet,auto --repeats 3 --json "$R/latency-dev-$side.json" \
      > "$R/latency-dev-$side.txt"
  done
fi
if on heldout; then
  m=$(margin)
  for side in off on; do
    [ $side = on ] && v=$m || v=-inf
    [ -s "$R/heldout-mpnet-$side.json" ] || QA_SCREEN_MARGIN=$v $PY -m qa.cli eval --squad2 --reader mpnet --json \
      > "$R/heldout-mpnet-$side.json"
  done
fi
if on summary; then
  $PY bench/gates/screening_summary.py "$R" | tee "$R/gate.txt"
fi
