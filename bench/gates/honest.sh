#!/usr/bin/env bash
# Honest answers (0.4.0): which reader versions ship, and which QA_READER becomes the default. Declared before any
# of these results (2026-12-07), while the two candidates below were still training.
#
# Candidates, both trained on the same mix (SQuAD 2.0 dev's 15 training articles of qa.training.splits, 5,142
# questions of which 2,496 unanswerable, plus 2,000 SQuAD v1.1 train questions at offset 19,000 of seed 22's order,
# none of them seen by mpnet-2 or mpnet-3, with their paired and answer-deleted negatives), bf16 autocast:
#   mpnet-4:  checkpoints/mpnet-3's adapter continued (LoRA r 16, lr 3e-4, 192-token windows, batch 16), planned
#             for 589 steps, re-planned at step 100 to end at step 400 and at step 175 to end at step 300 (the
#             learning rate falls linearly to 0 from there; the CPU was shared and the session's time is fixed):
#     qa train-reader --base-model mpnet --init-from checkpoints/mpnet-3 --lora-rank 16 --lora-alpha 32 \
#       --lora-dropout 0.0 --lr 3e-4 --warmup 0.03 --limit 2000 --offset 19000 --seed 22 --squad2-part train \
#       --max-length 192 --stride 64 --batch-size 16 --bf16 --negative-fraction 0.15 --removal-fraction 0.2 \
#       --out runs/mpnet-4 --save-every 25 --snapshot-every 100 --log-every 5 --threads 2 [--stop-at 400, 300]
#   minilm-10: a new LoRA adapter (r 16 on query, key, value and the dense layers, QA head trained fully) over
#             minilm-8 (models/reader), 160-token windows, batch 32, lr 3e-4, planned for one pass (344 steps),
#             re-planned at step 25 to end at step 200 (the same reason), one thread:
#     qa train-reader --base-model "$PWD/models/reader" --lora-rank 16 --lora-alpha 32 --lora-dropout 0.0 \
#       --lora-targets query,key,value,dense --lr 3e-4 --warmup 0.05 --limit 2000 --offset 19000 --seed 22 \
#       --squad2-part train --max-length 160 --stride 64 --batch-size 32 --bf16 --negative-fraction 0.15 \
#       --removal-fraction 0.2 --out runs/minilm-10 --save-every 25 --snapshot-every 100 --log-every 5 --threads 1 \
#       [--stop-at 200]
#
# Every reader, old and new, is calibrated the same new way (python -m qa.training.calibrate --objective squad2:
# the threshold that maximises SQuAD 2.0 F1 through the engine on the calibration articles 0, 2, 4).
# Everything runs with bf16 autocast on this CPU (QA_USE_BF16=1).
#
# Nothing below is chosen on the held-out (odd-numbered) articles: they are only reported. (The issue asks for the
# default with the highest held-out F1; the project's rule is that nothing is chosen on them, so the choice is made
# on the calibration articles' engine F1 and the held-out F1 is reported beside it.)
#
# Gate V (versions), each on its own:
#   (V1) mpnet-4 replaces mpnet-2 as QA_READER=mpnet if its engine F1 on the calibration articles (all 779
#        questions) is above mpnet-2's (both recalibrated), and its SQuAD v1.1 dev F1 on the seeded sample of 1,000
#        is at least mpnet-2's 86.07 (bf16, same sample) minus 0.5 (the sample's noise; whether it also reaches
#        86.07, the issue's bar, is reported).
#   (V2) minilm-10 replaces minilm-8 as QA_READER=minilm if its engine F1 on the calibration articles is above
#        minilm-8's (recalibrated) and its SQuAD v1.1 dev sample F1 is at least minilm-8's 81.1 minus 1.0.
#   A version that fails stays a checkpoint; the old one keeps its place, recalibrated.
# Gate D (the default), after V: the choices minilm, mpnet and auto (the cascade of the two readers V left, its cut
#   chosen on the calibration articles: the cut of 0, 0.1, ..., 0.9 with the highest cascade F1 there, ties the
#   lowest). A choice is eligible if (D1) its warm p50 (bench/readers.py, bf16, 3 passes over the article dev set)
#   is at most 250 ms and (D2) its F1 on bench/data/article_test_qa.jsonl and on article_final_qa.jsonl is each at
#   least minilm-8's as shipped before this gate (77.2 and 78.3; rerun here, and the rerun's figures are the bar).
#   The default becomes the eligible choice with the highest engine F1 on the calibration articles; none eligible:
#   minilm stays the default.
#
# Steps: export | calibrate | sample | versions (prints V; installing the winners is done by hand: copying the
# export into models/, a version bump) | cut | article | latency | heldout | summary.
# Results: bench/results/honest/. Exports: runs/honest/.
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 QA_USE_BF16=1
PY=.venv/bin/python
R=bench/results/honest
X=runs/honest
mkdir -p "$R" "$X"
step="${1:-all}"
on() { [[ $step == all || $step == "$1" ]]; }
# The folders of every reader this gate reads: the candidates' exports and the versions shipped before it.
declare -A FOLDER=([mpnet-4]=$X/mpnet-4 [minilm-10]=$X/minilm-10 [mpnet-2]=$X/mpnet-2 [minilm-8]=$X/minilm-8)
if on export; then
  [ -s $X/mpnet-4/adapter_model.safetensors ] || $PY -m qa.training.export runs/mpnet-4/final $X/mpnet-4 --half \
    --check 200 | tee $R/export-mpnet-4.txt
  [ -s $X/minilm-10/adapter_model.safetensors ] || $PY -m qa.training.export runs/minilm-10/final $X/minilm-10 \
    --half --check 200 | tee $R/export-minilm-10.txt
  # The shipped versions, copied so that their recalibration does not touch models/ before the gate decides.
  # (9c7f4a0: the last commit before this gate, where mpnet-2 and minilm-8 are shipped as they were.)
  for v in mpnet-2:models/reader-mpnet minilm-8:models/reader; do
    [ -d $X/${v%%:*} ] || { mkdir -p $X/${v%%:*} && git archive 9c7f4a0 ${v#*:} | tar -x -C $X/${v%%:*} \
      --strip-components=2; }
  done
fi
if on calibrate; then
  for r in mpnet-4 minilm-10 mpnet-2 minilm-8; do
    [ -s $R/calibrate-$r.json ] || { $PY -m qa.training.calibrate --model ${FOLDER[$r]} --objective squad2 --bf16 \
      --margins $R/calibration-margins-$r.jsonl > $R/calibrate-$r.log 2>&1 && cp ${FOLDER[$r]}/calibration.json \
      $R/calibrate-$r.json; }
  done
fi
if on sample; then
  for r in mpnet-4 minilm-10; do
    [ -s $R/squad1-sample1000-$r.json ] || $PY -m qa.training.evaluate --model ${FOLDER[$r]} --sets squad1 \
      --sample 1000 --sample-seed 0 --max-length 256 --stride 96 --bf16 --out $R/squad1-sample1000-$r.json > /dev/null
  done
fi
if on versions; then
  $PY - "$R" <<'EOF'
import json, sys
from pathlib import Path
r = Path(sys.argv[1])
cal = {n: json.loads((r / f"calibrate-{n}.json").read_text())["calibration_articles"]["f1"]
       for n in ("mpnet-4", "mpnet-2", "minilm-10", "minilm-8")}
s1 = {n: json.loads((r / f"squad1-sample1000-{n}.json").read_text())["squad_v1.1_dev"]["f1"] for n in ("mpnet-4", "minilm-10")}
v1 = cal["mpnet-4"] > cal["mpnet-2"] and s1["mpnet-4"] >= 86.07 - 0.5
v2 = cal["minilm-10"] > cal["minilm-8"] and s1["minilm-10"] >= 81.1 - 1.0
lines = [f"calibration-articles engine F1: {cal}", f"SQuAD v1.1 dev sample of 1,000 F1: {s1}",
         f"V1 mpnet-4 replaces mpnet-2: {'PASS' if v1 else 'FAIL'} (issue bar, sample F1 >= 86.07: "
         f"{'met' if s1['mpnet-4'] >= 86.07 else 'not met'})",
         f"V2 minilm-10 replaces minilm-8: {'PASS' if v2 else 'FAIL'}"]
(r / "versions.txt").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
fi
# After V: the shipped readers are whatever models/ now holds (installed by hand from the exports).
if on cut; then
  for r in minilm mpnet; do
    [ -s $R/calibration-engine-$r.jsonl ] || .venv/bin/qa eval --squad2 --part calibration --answerable 0 \
      --unanswerable 0 --reader $r --json --predictions $R/calibration-engine-$r.jsonl > $R/calibration-engine-$r.json
  done
  $PY - "$R" <<'EOF' | tee $R/cut.txt
import json, sys
from pathlib import Path
from qa.training import squad2
from qa.training.splits import load_part
r = Path(sys.argv[1])
questions = squad2.sample(load_part("calibration"), None, None)
fast = squad2.read_predictions(r / "calibration-engine-minilm.jsonl")
slow = squad2.read_predictions(r / "calibration-engine-mpnet.jsonl")
cut, rows = squad2.choose_cut(questions, fast, slow, [round(0.1 * i, 1) for i in range(10)])
(r / "cut.json").write_text(json.dumps({"cut": cut, "rows": rows}, indent=2) + "\n")
for row in rows:
    print(row)
print(f"cut {cut}")
EOF
fi
CUT=$( [ -s $R/cut.json ] && $PY -c "import json; print(json.load(open('$R/cut.json'))['cut'])" || echo 0.4)
if on article; then
  for s in bench/data/article_test_qa.jsonl bench/data/article_final_qa.jsonl; do
    o=$R/article-$(basename $s .jsonl)-minilm-8-shipped.json
    [ -s $o ] || QA_NO_ANSWER_THRESHOLD=$(git show 9c7f4a0:models/reader/calibration.json | $PY -c \
      "import json,sys; print(json.load(sys.stdin)['no_answer_threshold'])") .venv/bin/qa eval $s --reader \
      $X/minilm-8 --json > $o
    for r in minilm mpnet auto; do
      o=$R/article-$(basename $s .jsonl)-$r.json
      [ -s $o ] || QA_CASCADE_CUT=$CUT .venv/bin/qa eval $s --reader $r --json > $o
    done
  done
fi
if on latency; then
  [ -s $R/readers.json ] || QA_CASCADE_CUT=$CUT $PY bench/readers.py --readers minilm,mpnet,auto --json $R/readers.json
fi
if on heldout; then  # reported only
  for r in minilm mpnet auto; do
    [ -s $R/heldout-engine-$r.json ] || QA_CASCADE_CUT=$CUT .venv/bin/qa eval --squad2 --reader $r --json \
      --predictions $R/heldout-engine-$r.jsonl > $R/heldout-engine-$r.json
  done
  for r in minilm mpnet; do
    [ -s $R/heldout-gold-$r.json ] || .venv/bin/qa eval --squad2 --mode gold --answerable 200 --unanswerable 200 \
      --reader $r --json > $R/heldout-gold-$r.json
  done
fi
if on summary; then
  $PY - "$R" "$CUT" <<'EOF' | tee $R/gate.txt
import json, sys
from pathlib import Path
r, cut = Path(sys.argv[1]), float(sys.argv[2])
load = lambda name: json.loads((r / name).read_text())
bar = {s: load(f"article-{s}-minilm-8-shipped.json")["f1"] for s in ("article_test_qa", "article_final_qa")}
cal = {n: load(f"calibration-engine-{n}.json")["f1"] for n in ("minilm", "mpnet")}
cal["auto"] = next(row["f1"] for row in load("cut.json")["rows"] if row["cut"] == cut)
lat = {row["reader"]: row for row in load("readers.json")["results"]} if (r / "readers.json").exists() else {}
print(f"bar (minilm-8 as shipped): article test F1 {bar['article_test_qa']:.1f}, blind {bar['article_final_qa']:.1f}")
eligible = {}
for n in ("minilm", "mpnet", "auto"):
    f1 = {s: load(f"article-{s}-{n}.json")["f1"] for s in bar}
    p50 = lat.get(n, {}).get("p50_ms")
    d1 = p50 is not None and p50 <= 250
    d2 = all(f1[s] >= bar[s] for s in bar)
    held = load(f"heldout-engine-{n}.json") if (r / f"heldout-engine-{n}.json").exists() else {}
    print(f"{n}: calibration F1 {cal[n]:.1f}; p50 {p50} ms (D1 {'ok' if d1 else 'no'}); article test "
          f"{f1['article_test_qa']:.1f}, blind {f1['article_final_qa']:.1f} (D2 {'ok' if d2 else 'no'}); held-out "
          f"F1 {held.get('f1', float('nan')):.1f}, HasAns {held.get('has_ans_f1', float('nan')):.1f}, refused "
          f"{held.get('unanswerable_refused', float('nan')):.1f}% (reported only)")
    if d1 and d2:
        eligible[n] = cal[n]
default = max(eligible, key=eligible.get) if eligible else "minilm"
print(f"cascade cut {cut}; default: {default}" + ("" if eligible else " (none eligible: minilm stays)"))
EOF
fi
