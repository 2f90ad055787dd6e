"""The Python API loads quietly: ``Assistant.load()`` and a first question write nothing on stderr.

transformers draws a "Loading weights" bar for every model it loads; the library turns the bars off for the
length of its own loads (:func:`qa.quiet.quiet_loading`) and puts them back as the program had them.
"""

from __future__ import annotations

import logging

from transformers.utils import logging as hf_logging

from conftest import needs_trained_reader
from qa.quiet import quiet_loading
from test_logs import python, quiet_env

ASK = """
from qa import Assistant
assistant = Assistant.load({reader})
print(assistant.ask("Who is the commander of the Quds Force?").text)
"""


def test_loading_a_tiny_reader_and_asking_writes_nothing_on_stderr(tiny_reader_dir):
    out = python("-c", ASK.format(reader=f"reader={str(tiny_reader_dir)!r}"), env=quiet_env())
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""


@needs_trained_reader
def test_the_default_assistant_loads_and_answers_with_nothing_on_stderr():
    out = python("-c", ASK.format(reader=""), env=quiet_env())
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    assert out.stdout.strip() == "Qassem Suleimani"


def test_the_bars_come_back_as_the_program_had_them():
    hf_logging.enable_progress_bar()
    with quiet_loading():
        assert not hf_logging.is_progress_bar_enabled()
        with quiet_loading():  # nested loads (a merge inside a reader load) keep them off
            assert not hf_logging.is_progress_bar_enabled()
        assert not hf_logging.is_progress_bar_enabled()
    assert hf_logging.is_progress_bar_enabled()


def test_bars_the_program_turned_off_stay_off():
    hf_logging.disable_progress_bar()
    try:
        with quiet_loading():
            pass
        assert not hf_logging.is_progress_bar_enabled()
    finally:
        hf_logging.enable_progress_bar()


def test_a_program_listening_at_info_keeps_the_bars():
    logger = logging.getLogger("qa")
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        hf_logging.enable_progress_bar()
        with quiet_loading():
            assert hf_logging.is_progress_bar_enabled()
    finally:
        logger.setLevel(level)
