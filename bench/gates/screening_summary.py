"""The verdict of bench/gates/screening.sh from its results folder (declared with the gate, before its results).

Run: ``.venv/bin/python bench/gates/screening_summary.py bench/results/screening``
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def unanswerable_answered(report: dict) -> int:
    """Unanswerable questions given an answer: those not refused (abstention recall is the share refused)."""
    return round(report["unanswerable"] * (1 - report["abstention_recall"] / 100))


def p50(path: Path, reader: str) -> float:
    return next(r["p50_ms"] for r in load(path)["results"] if r["reader"] == reader)


def main(folder: str) -> int:
    r = Path(folder)
    lines = [(r / "margin.txt").read_text(encoding="utf-8").strip()]
    ok = "FAIL" not in lines[0]
    for name in ("article_test_qa", "article_final_qa"):
        for reader in ("mpnet", "auto"):
            off, on = load(r / f"{name}-{reader}-off.json"), load(r / f"{name}-{reader}-on.json")
            u_off, u_on = unanswerable_answered(off), unanswerable_answered(on)
            passed = on["f1"] >= off["f1"] - 1.0 and u_on <= u_off
            ok &= passed
            lines.append(f"S2 {name} {reader}: F1 {off['f1']:.1f} -> {on['f1']:.1f}, unanswerable answered {u_off} -> "
                         f"{u_on}: {'pass' if passed else 'FAIL'}")
    sides = {side: [p50(p, "mpnet") for p in sorted(r.glob(f"latency-test-*-{side}.json"))] for side in ("off", "on")}
    off, on = statistics.mean(sides["off"]), statistics.mean(sides["on"])
    passed = on <= 0.9 * off
    ok &= passed
    lines.append(f"S3 mpnet p50 on the article test set: without {sides['off']} -> mean {off:.1f} ms; with "
                 f"{sides['on']} -> mean {on:.1f} ms; ratio {on / off:.3f}: {'pass' if passed else 'FAIL'}")
    for side in ("off", "on"):
        dev = r / f"latency-dev-{side}.json"
        if dev.is_file():
            lines.append(f"reported: article dev p50 {side}: mpnet {p50(dev, 'mpnet'):.1f} ms, auto {p50(dev, 'auto'):.1f} ms")
        held = r / f"heldout-mpnet-{side}.json"
        if held.is_file():
            h = load(held)
            lines.append(f"reported: SQuAD 2.0 held-out (150 + 150) mpnet {side}: F1 {h['f1']:.2f}, HasAns F1 "
                         f"{h.get('has_ans_f1', float('nan')):.2f}, unanswerable refused {h.get('unanswerable_refused')}")
    lines.append(f"verdict: {'SHIP' if ok else 'do not ship'}")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
