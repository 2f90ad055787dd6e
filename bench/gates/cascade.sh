#!/usr/bin/env bash
# The reader cascade (QA_READER=auto): the fast reader answers, and the accurate one rereads where the fast
# reader's confidence is under a cut. Declared before any of these results (2026-12-03).
#
# fast = minilm (models/reader); slow = the mpnet reader shipped when this runs (models/reader-mpnet). Everything runs
# with bf16 autocast (QA_USE_BF16=1, --bf16) on a CPU with native bf16, as such a CPU runs the product. (First
# declared for float32 on an AVX2-only CPU; the CPU it runs on has AVX-512-BF16, so the mode was changed before any
# result: the ratios it compares are taken within one run in one mode.)
#
# (a) Per-question predictions of both readers (qa.training.evaluate --predictions, 256-token windows, stride 96)
#     on the SQuAD v1.1 dev sample (--sample 1000 --sample-seed 0) and on XQuAD-en (all 1,190). The mpnet-3 gate's
#     prediction files of the reader that is shipped (mpnet-3's, or mpnet-2's XQuAD-en from its step baseline) are
#     the same computation on the same weights in the same mode and are copied in instead.
# (b) The cut, chosen on the SQuAD v1.1 dev sample only: the smallest of 0.05, 0.10, ..., 0.95 at which the
#     cascade's F1 >= minilm's + 0.75 x (mpnet's - minilm's). XQuAD-en at that cut is reported, not used.
# (c) The engine, bench/cascade.py on bench/data/article_test_qa.jsonl, article_final_qa.jsonl and the article dev set,
#     at that cut (other cuts are printed too). The cascade ships as QA_READER=auto if, on both the test and the blind
#     (final) set: its F1 is above minilm's, its p50 is under mpnet's, and it answers no more unanswerable questions
#     than minilm. The default reader stays minilm whatever the result.
# (d) If it ships: `qa eval --reader auto` on the test set must give the F1 that (c) computed for that cut. Only a
#     follow-up question may differ: the real cascade resolves "he" or "it" with its own earlier answer, while (c)
#     took each reader's whole run; any question that differs is listed.
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 QA_USE_BF16=1
PY=.venv/bin/python
R=${CASCADE_RESULTS:-runs/cascade}  # a rerun for a new fast reader: CASCADE_RESULTS=runs/cascade-NAME
mkdir -p "$R"
step="${1:-all}"
on() { [[ $step == all || $step == "$1" ]]; }
if on predictions; then
  for r in minilm mpnet; do
    model=$([ $r = minilm ] && echo models/reader || echo models/reader-mpnet)
    [ -s "$R/sample-$r.jsonl" ] || $PY -m qa.training.evaluate --model $model --sets squad1 --sample 1000 \
      --sample-seed 0 --max-length 256 --stride 96 --bf16 --out "$R/sample-$r.json" \
      --predictions "$R/sample-$r.jsonl" > /dev/null
    [ -s "$R/xquad-$r.jsonl" ] || $PY -m qa.training.evaluate --model $model --sets xquad --max-length 256 \
      --stride 96 --bf16 --out "$R/xquad-$r.json" --predictions "$R/xquad-$r.jsonl" > /dev/null
  done
fi
if on cut; then
  $PY bench/cascade.py --sets "" --cuts "$(seq -s, 0.05 0.05 0.95)" --json "$R/reader.json" \
    --predictions "$R/sample-minilm.jsonl" "$R/sample-mpnet.jsonl" \
    --predictions "$R/xquad-minilm.jsonl" "$R/xquad-mpnet.jsonl" > "$R/reader.txt"
  $PY - "$R" <<'EOF'
import json, sys
from pathlib import Path
r = Path(sys.argv[1])
report = json.loads((r / "reader.json").read_text())
sample, xquad = report["reader"].values()
fast, slow, *rest = sample
bar = fast["f1"] + 0.75 * (slow["f1"] - fast["f1"])
chosen = next((row for row in rest if row["f1"] >= bar), None)
cut = chosen["reader"].split("@")[1] if chosen else "none"
at = next((row for row in xquad if row["reader"] == f"cascade@{cut}"), None)
line = (f"(b) SQuAD sample F1 minilm {fast['f1']} mpnet {slow['f1']}; bar {bar:.2f}; cut {cut}"
        + (f" (F1 {chosen['f1']}, reread {chosen['reread']}); XQuAD-en at it: F1 {at['f1']} reread {at['reread']} "
           f"(minilm {xquad[0]['f1']}, mpnet {xquad[1]['f1']})" if chosen else ""))
print(line)
(r / "cut.txt").write_text(cut + "\n")
(r / "gate-b.txt").write_text(line + "\n")
EOF
fi
if on engine; then  # times: needs an idle CPU
  cut=$(cat "$R/cut.txt")
  if [ "$cut" = none ]; then echo "(c) no cut reaches the bar of (b): the cascade does not ship" | tee "$R/gate-c.txt"; exit 0; fi
  [ -s "$R/engine.json" ] || $PY bench/cascade.py --cuts "$cut,0.5,0.7,0.9" --json "$R/engine.json" | tee "$R/engine.txt"
  $PY - "$R" "$cut" <<'EOF'
import json, sys
from pathlib import Path
r, cut = Path(sys.argv[1]), sys.argv[2]
engine = json.loads((r / "engine.json").read_text())["engine"]
lines, ships = [], True
for name, rows in engine.items():
    fast, slow = rows[0], rows[1]
    at = next(row for row in rows if row["reader"] == f"cascade@{float(cut):g}")
    ok = at["f1"] > fast["f1"] and at["p50_ms"] < slow["p50_ms"] and at["unanswerable_answered"] <= fast["unanswerable_answered"]
    judged = "article_dev_qa" not in name
    ships &= ok or not judged
    lines.append(f"(c) {Path(name).stem}: F1 minilm {fast['f1']} mpnet {slow['f1']} cascade {at['f1']} (reread "
                 f"{at['reread']}); p50 {fast['p50_ms']} / {slow['p50_ms']} / {at['p50_ms']} ms; unanswerable answered "
                 f"{fast['unanswerable_answered']} / {slow['unanswerable_answered']} / {at['unanswerable_answered']}"
                 + (f" (pass: {ok})" if judged else " (reported)"))
lines.append(f"(c) ships as QA_READER=auto: {ships}")
print("\n".join(lines))
(r / "gate-c.txt").write_text("\n".join(lines) + "\n")
EOF
fi
if on auto && grep -q "ships as QA_READER=auto: True" "$R/gate-c.txt"; then
  [ -s "$R/auto-test.json" ] || QA_CASCADE_CUT=$(cat "$R/cut.txt") .venv/bin/qa eval bench/data/article_test_qa.jsonl \
    --reader auto --json > "$R/auto-test.json"
  $PY -c "import json,sys; print('(d) qa eval --reader auto, test set F1', round(json.load(open(sys.argv[1]))['f1'], 2))" \
    "$R/auto-test.json" | tee "$R/gate-d.txt"
fi
