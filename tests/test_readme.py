"""The README's Python examples run as written."""

import re
from pathlib import Path


def test_readme_python_blocks_run():
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "the README shows Python usage"
    namespace: dict = {}
    exec(compile("\n".join(blocks), "README.md", "exec"), namespace)
    assert namespace["rec"].first_spike_times("hid").shape == (8, 10)
    assert namespace["rec_b"].n_trials == 8 and set(namespace["grads_b"]) == set(namespace["grads"])
    assert namespace["result"].history.sizes["epoch"] == 5
    assert namespace["test"].attrs["accuracy"] >= 0.9   # the example shows a trained network, not 0 %
