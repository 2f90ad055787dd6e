#!/usr/bin/env bash
# Honest answers, second round (0.5.0): a newer MPNet version, early exit over passages, and the default chosen
# again. Declared before any of these results (2026-12-07).
#
# Candidates for QA_READER=mpnet (now mpnet-4):
#   mpnet-5: checkpoints/mpnet-5 (at commit 8c59fa6; mpnet-4 trained 420 more steps on the same mix in another order: seed 23, lr 2e-4,
#            the rest as mpnet-4; its train_config.json), exported to runs/honest/mpnet-5 (--half --check 200).
#   (Amended once the session's time was counted, after mpnet-5's calibration (F1 64.41) and before any other result:
#   mpnet-6 is not a candidate here.
#   A run with look-alike negatives, qa.training.data.make_swap_negatives, trains beside this gate from mpnet-5 and
#   is committed as a checkpoint for a later gate:
#     qa train-reader --base-model mpnet --init-from runs/honest/mpnet-5 --lora-rank 16 --lora-alpha 32 \
#       --lora-dropout 0.0 --lr 1.5e-4 --warmup 0.03 --limit 2000 --offset 21000 --seed 24 --squad2-part train \
#       --max-length 192 --stride 64 --batch-size 16 --bf16 --negative-fraction 0.15 --removal-fraction 0.2 \
#       --swap-fraction 0.3 --out runs/mpnet-6 --save-every 25 --snapshot-every 100 --log-every 5 --threads 1,
#       planned for 618 steps, re-planned at step 300 with --stop-at 450: the learning rate falls to 0 there)
#
# Gate V (the mpnet version): among the candidates (mpnet-5), those whose engine F1 on the calibration articles (all 779
#   questions, each calibrated the same way: python -m qa.training.calibrate --objective squad2) is above mpnet-4's
#   (64.06, bench/results/honest/calibrate-mpnet-4.json) and whose SQuAD v1.1 dev F1 on the seeded sample of 1,000
#   is at least mpnet-2's 86.07 minus 0.5 (bf16): the one with the highest calibration F1 replaces mpnet-4.
#
# Gate E (early exit, qa.reader.Reader.read_many's exit_margin): each shipped reader's exit margin is chosen by its
#   calibration (the lowest margin, at least its threshold, in steps of 0.5 up to 12, whose calibration-articles F1
#   is within 0.1 of reading every passage; none: no early exit) and written to its calibration.json. The cascade's
#   cut is chosen again as in bench/gates/honest.sh (0, 0.1, ..., 0.9, highest calibration F1, ties the lowest), on
#   the two readers' calibration predictions with early exit.
#   Reported, not gated: answers changed by early exit on the two article sets and on the held-out articles.
#
# Gate D (the default), after V and E, as in bench/gates/honest.sh: choices minilm, mpnet and auto, each with its
#   early exit. Eligible if (D1) warm p50 (bench/readers.py, bf16, 3 passes over the article dev set, idle CPU)
#   <= 250 ms and (D2) F1 on bench/data/article_test_qa.jsonl and article_final_qa.jsonl each at least minilm-8's
#   as shipped (77.2 and 78.3, bench/results/honest/article-*-minilm-8-shipped.json). The default becomes the
#   eligible choice with the highest engine F1 on the calibration articles; none eligible: minilm-8 stays.
#   Held-out SQuAD 2.0 (odd articles) is reported only, never used to choose.
#
# Steps: export | calibrate | sample | versions | recalibrate | cut | article | latency | heldout | summary
# Results: bench/results/honest-2/. Exports: runs/honest/.
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 QA_USE_BF16=1
PY=.venv/bin/python
R=bench/results/honest-2
X=runs/honest
mkdir -p "$R" "$X"
step="${1:-all}"
on() { [[ $step == all || $step == "$1" ]]; }
CANDIDATES="mpnet-5"
if on export; then
  for v in $CANDIDATES; do
    src=runs/$v/final
    [ -d $src ] || src=checkpoints/$v
    [ -s $X/$v/adapter_model.safetensors ] || $PY -m qa.training.export $src $X/$v --half --check 200 \
      | tee $R/export-$v.txt
  done
fi
if on calibrate; then  # the candidates, then the shipped readers (models/ is what V left)
  for v in $CANDIDATES; do
    [ -s $R/calibrate-$v.json ] || { $PY -m qa.training.calibrate --model $X/$v --objective squad2 --bf16 \
      --margins $R/calibration-margins-$v.jsonl > $R/calibrate-$v.log 2>&1 && cp $X/$v/calibration.json \
      $R/calibrate-$v.json; }
  done
fi
if on sample; then
  for v in $CANDIDATES; do
    [ -s $R/squad1-sample1000-$v.json ] || $PY -m qa.training.evaluate --model $X/$v --sets squad1 \
      --sample 1000 --sample-seed 0 --max-length 256 --stride 96 --bf16 --out $R/squad1-sample1000-$v.json > /dev/null
  done
fi
if on versions; then
  $PY - "$R" $CANDIDATES <<'EOF'
import json, sys
from pathlib import Path
r, names = Path(sys.argv[1]), sys.argv[2:]
cal = {n: json.loads((r / f"calibrate-{n}.json").read_text())["calibration_articles"]["f1"] for n in names}
s1 = {n: json.loads((r / f"squad1-sample1000-{n}.json").read_text())["squad_v1.1_dev"]["f1"] for n in names}
ok = [n for n in names if cal[n] > 64.06 and s1[n] >= 86.07 - 0.5]
lines = [f"calibration-articles engine F1: {cal} (mpnet-4: 64.06)", f"SQuAD v1.1 dev sample of 1,000 F1: {s1} "
         "(bar 85.57)", f"V: {max(ok, key=cal.get) + ' replaces mpnet-4' if ok else 'mpnet-4 stays'}"]
(r / "versions.txt").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
fi
# Amended after V, E and D had run with mpnet-5 (results kept in bench/results/honest-2/with-mpnet-5/), before any
# result below with mpnet-4: every change must also pass the whole suite (scripts/test.sh), a standing rule that V
# left out. mpnet-5 failed it: it refuses the follow-up "Whose deputy is Hamid Aboutalebi?" (margin 2.80 under its
# threshold 2.94; tests/test_followup.py), which mpnet-4 answers, and its article test F1 fell from 88.2 to 81.5.
# So mpnet-5 does not ship (checkpoints/mpnet-5, with its calibration); mpnet-4 stays QA_READER=mpnet, and the steps
# from recalibrate on are run again with it, unchanged (minilm's recalibration stands: minilm-10 did not change).
# After V: models/reader-mpnet holds the winner (installed by hand from its export, calibration included), and every
# choice's reader (minilm, mpnet) is recalibrated (its calibration.json gets its early-exit margin) before the steps below;
# minilm-8 keeps its calibration as shipped.
if on recalibrate; then
  for r in minilm:models/reader-minilm mpnet:models/reader-mpnet; do
    [ -s $R/calibrate-shipped-${r%%:*}.json ] || { $PY -m qa.training.calibrate --model ${r#*:} --objective squad2 \
      --bf16 --margins $R/calibration-shipped-${r%%:*}.jsonl > $R/calibrate-shipped-${r%%:*}.log 2>&1 && cp \
      ${r#*:}/calibration.json $R/calibrate-shipped-${r%%:*}.json; }
  done
fi
if on cut; then
  $PY - "$R" <<'EOF' | tee $R/cut.txt
import json, sys
from pathlib import Path
from qa.training import squad2
from qa.training.splits import load_part
r = Path(sys.argv[1])
questions = squad2.sample(load_part("calibration"), None, None)
def exited(name):
    cal = json.loads((r / f"calibrate-shipped-{name}.json").read_text())
    full = squad2.read_predictions(r / f"calibration-shipped-{name}.jsonl")
    first = squad2.read_predictions(r / f"calibration-shipped-{name}.first-passage.jsonl")
    m = cal["early_exit_margin"]
    return squad2.early_exit(full, first, cal["no_answer_threshold"], m if m is not None else float("inf"))[0]
cut, rows = squad2.choose_cut(questions, exited("minilm"), exited("mpnet"), [round(0.1 * i, 1) for i in range(10)])
(r / "cut.json").write_text(json.dumps({"cut": cut, "rows": rows}, indent=2) + "\n")
for row in rows:
    print(row)
print(f"cut {cut}")
EOF
fi
CUT=$( [ -s $R/cut.json ] && $PY -c "import json; print(json.load(open('$R/cut.json'))['cut'])" || echo 0.9)
if on article; then
  for s in bench/data/article_test_qa.jsonl bench/data/article_final_qa.jsonl; do
    for r in minilm mpnet auto; do
      o=$R/article-$(basename $s .jsonl)-$r.json
      [ -s $o ] || QA_CASCADE_CUT=$CUT .venv/bin/qa eval $s --reader $r --json > $o
      o=$R/article-$(basename $s .jsonl)-$r-full-read.json
      [ -s $o ] || QA_EARLY_EXIT_MARGIN=inf QA_CASCADE_CUT=$CUT .venv/bin/qa eval $s --reader $r --json > $o
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
  [ -s $R/heldout-engine-mpnet-full-read.json ] || QA_EARLY_EXIT_MARGIN=inf .venv/bin/qa eval --squad2 --reader mpnet \
    --json --predictions $R/heldout-engine-mpnet-full-read.jsonl > $R/heldout-engine-mpnet-full-read.json
  [ -s $R/heldout-gold-mpnet.json ] || .venv/bin/qa eval --squad2 --mode gold --answerable 200 --unanswerable 200 \
    --reader mpnet --json > $R/heldout-gold-mpnet.json
fi
if on summary; then
  $PY - "$R" "$CUT" <<'EOF' | tee $R/gate.txt
import json, sys
from pathlib import Path
r, cut = Path(sys.argv[1]), float(sys.argv[2])
load = lambda name: json.loads((r / name).read_text())
old = Path("bench/results/honest")
bar = {s: json.loads((old / f"article-{s}-minilm-8-shipped.json").read_text())["f1"]
       for s in ("article_test_qa", "article_final_qa")}
cal = {n: load(f"calibrate-shipped-{n}.json")["early_exit"] for n in ("minilm", "mpnet")}
exit_f1 = {}
for n, e in cal.items():
    m = load(f"calibrate-shipped-{n}.json")["early_exit_margin"]
    exit_f1[n] = next((row["f1"] for row in e["rows"] if row["exit_margin"] == m), e["rows"][0]["f1_full_read"])
exit_f1["auto"] = next(row["f1"] for row in load("cut.json")["rows"] if row["cut"] == cut)
lat = {row["reader"]: row for row in load("readers.json")["results"]} if (r / "readers.json").exists() else {}
print(f"bar (minilm-8 as shipped before 0.4.0's gate): article test F1 {bar['article_test_qa']:.1f}, "
      f"blind {bar['article_final_qa']:.1f}")
eligible = {}
for n in ("minilm", "mpnet", "auto"):
    f1 = {s: load(f"article-{s}-{n}.json")["f1"] for s in bar}
    p50 = lat.get(n, {}).get("p50_ms")
    d1 = p50 is not None and p50 <= 250
    d2 = all(f1[s] >= bar[s] for s in bar)
    held = load(f"heldout-engine-{n}.json") if (r / f"heldout-engine-{n}.json").exists() else {}
    print(f"{n}: calibration F1 {exit_f1[n]:.2f}; p50 {p50} ms (D1 {'ok' if d1 else 'no'}); article test "
          f"{f1['article_test_qa']:.1f}, blind {f1['article_final_qa']:.1f} (D2 {'ok' if d2 else 'no'}); held-out "
          f"F1 {held.get('f1', float('nan')):.1f}, HasAns {held.get('has_ans_f1', float('nan')):.1f}, refused "
          f"{held.get('unanswerable_refused', float('nan')):.1f}% (reported only)")
    if d1 and d2:
        eligible[n] = exit_f1[n]
default = max(eligible, key=eligible.get) if eligible else "minilm-8"
print(f"cascade cut {cut}; default: {default}" + ("" if eligible else " (none eligible: minilm-8 stays)"))
EOF
fi
