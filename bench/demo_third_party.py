"""Demo on documents we did not write: scikit-learn's dataset descriptions (.rst), indexed and asked.

1. Builds an index of the folder ``sklearn/datasets/descr`` (14 .rst files, plus a ``.py`` and a ``.pyc``
   that are reported as skipped) into a temporary directory with the real command line,
   ``qa index build DIR --index TMP``: its progress bar and end summary are shown as they come.
2. Asks 10 factual questions written from reading those files, each with the answer and the file that
   holds it, and prints the answer, the cited source (title, path, character offsets) and the quote.
3. Counts an answer as correct when it is one of the accepted answers (up to case, punctuation, articles
   and spacing: a longer or neighbouring span is wrong) **and** cites the file that holds it. For a wrong
   answer it also prints the reader's other candidates.

scikit-learn is a demo-only tool, not a dependency of the project::

    nice -n 19 .venv/bin/pip install scikit-learn
    .venv/bin/python bench/demo_third_party.py              # about a minute on 2 cores
    .venv/bin/python bench/demo_third_party.py PATH/TO/descr --keep-index demo-index

The folder is found without importing scikit-learn; give it as the first argument to use another copy.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

# (question, accepted answers, the file that holds the answer)
QUESTIONS = [
    ("How many instances does the iris dataset have?", ["150", "150 (50 in each of three classes)"], "iris.rst"),
    ("Who donated the breast cancer dataset?", ["Nick Street", "W. Nick Street"], "breast_cancer.rst"),
    ("How many patients are in the diabetes dataset?", ["442", "n = 442"], "diabetes.rst"),
    ("How many baseline variables does the diabetes dataset have?", ["ten", "10"], "diabetes.rst"),
    ("Which census was the California housing dataset derived from?", ["1990 U.S. census", "1990 census", "1990"],
     "california_housing.rst"),
    ("In which country were the wines of the wine recognition dataset grown?", ["Italy"], "wine_data.rst"),
    ("Where were the Olivetti face images taken?", ["AT&T Laboratories Cambridge"], "olivetti_faces.rst"),
    ("How many people contributed to the training set of the handwritten digits dataset?", ["30"], "digits.rst"),
    ("What is the most popular model for face detection?", ["Viola-Jones"], "lfw.rst"),
    ("How many posts does the 20 newsgroups dataset comprise?", ["18000", "around 18000"], "twenty_newsgroups.rst"),
]


def sklearn_descr() -> Path | None:
    """``sklearn/datasets/descr`` of the installed scikit-learn, found without importing it."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "descr"
    return folder if folder.is_dir() else None


def normalise(text: str) -> str:
    text = "".join(" " if ch in string.punctuation else ch for ch in text.lower())
    return " ".join(w for w in text.split() if w not in {"a", "an", "the"})


def is_expected(answer: str | None, accepted: list[str]) -> bool:
    """The answer is one of the accepted ones, up to case, punctuation, articles and spacing."""
    return bool(answer) and normalise(answer) in {normalise(a) for a in accepted}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", type=Path, help="the descr folder (default: the installed scikit-learn's)")
    parser.add_argument("--keep-index", type=Path, help="build the index here and keep it (default: a temp dir)")
    args = parser.parse_args(argv)
    folder = args.folder or sklearn_descr()
    if folder is None or not folder.is_dir():
        print("scikit-learn's dataset descriptions not found: `pip install scikit-learn` or give the folder",
              file=sys.stderr)
        return 1
    tmp = None
    if args.keep_index:
        index_dir = args.keep_index
    else:
        tmp = Path(tempfile.mkdtemp(prefix="qa-demo-"))
        index_dir = tmp / "index"
    qa_cli = Path(sys.executable).with_name("qa")
    command = [str(qa_cli) if qa_cli.exists() else sys.executable, *([] if qa_cli.exists() else ["-m", "qa.cli"]),
               "index", "build", str(folder), "--index", str(index_dir)]
    try:
        print("$ qa index build", folder, "--index", index_dir, flush=True)
        started = time.perf_counter()
        build = subprocess.run(command)
        if build.returncode != 0:
            return build.returncode
        print(f"(build command took {time.perf_counter() - started:.1f} s wall, model loading included)\n", flush=True)

        from transformers.utils import logging as hf_logging

        from qa.assistant import Assistant

        hf_logging.disable_progress_bar()

        assistant = Assistant.load(index_dir)
        correct = 0
        for n, (question, accepted, expected_file) in enumerate(QUESTIONS, 1):
            answer = assistant.ask(question)
            print(f"Q{n}. {question}")
            print(f"    expected: {accepted[0]!r} from {expected_file}")
            if answer.text is None:
                closest = assistant.source(answer.passages[0].passage.source_id).origin if answer.passages else "-"
                print("    answer:   (abstained: the indexed text does not answer)")
                print(f"    closest passage from: {closest}")
                print("    -> WRONG (no answer)\n")
                continue
            c = answer.citations[0]
            cited_file = Path(c.origin).name
            ok_answer, ok_source = is_expected(answer.text, accepted), cited_file == expected_file
            assert assistant.source(c.source_id).text[c.start:c.end] == answer.text  # offsets slice the source
            quote = c.quote[: c.start - c.quote_start] + "[[" + answer.text + "]]" + c.quote[c.end - c.quote_start:]
            print(f"    answer:   {answer.text!r}  (confidence {answer.score:.0%}, "
                  f"{answer.timings.get('total', 0) * 1000:.0f} ms)")
            print(f"    cited:    {c.title!r} — {c.origin}, characters {c.start}-{c.end}")
            print(f"    quote:    \"{' '.join(quote.split())}\"")
            verdict = "correct" if ok_answer and ok_source else "WRONG (" + ", ".join(
                why for why, bad in (("answer", not ok_answer), (f"cites {cited_file}", not ok_source)) if bad) + ")"
            correct += ok_answer and ok_source
            if not (ok_answer and ok_source):
                others = [f"{cand.text!r} ({cand.probability:.0%}, {Path(cand.citation.origin).name})"
                          for cand in answer.candidates[1:4]]
                print(f"    other candidates: {', '.join(others) or '-'}")
            print(f"    -> {verdict}\n")
        print(f"{correct}/{len(QUESTIONS)} correct (right answer and right file cited); "
              f"{len(assistant.sources())} sources, {len(assistant.index)} passages")
        return 0
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
