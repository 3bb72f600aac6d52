"""The benchmark scripts refuse an output path they could not write before they compute anything."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _scripts_with_json_option():
    return sorted(p for p in BENCH.glob("*.py") if '"--json"' in p.read_text())


def test_every_json_option_is_checked_when_the_arguments_are_read():
    scripts = _scripts_with_json_option()
    assert len(scripts) >= 8
    unchecked = [p.name for p in scripts
                 if not re.search(r'add_argument\("--json", type=writable_path', p.read_text())]
    assert unchecked == []


@pytest.mark.parametrize("name", ["sorting.py", "sweep.py"])
def test_a_folder_or_an_unwritable_place_ends_the_script_with_one_line_and_exit_2(name, tmp_path):
    for bad, words in ((tmp_path, "is a folder"), (Path("/proc/no/such/out.json"), "cannot create the folder")):
        run = subprocess.run([sys.executable, str(BENCH / name), "--json", str(bad)], capture_output=True,
                             text=True, timeout=120)
        assert run.returncode == 2, run.stderr
        assert "Traceback" not in run.stderr
        assert "argument --json: " in run.stderr.strip().splitlines()[-1] and words in run.stderr
