"""The walkthrough notebook runs top to bottom with a real kernel, and is stored without outputs."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from compose_train import REPO_ROOT

NOTEBOOK = REPO_ROOT / "notebooks" / "walkthrough.ipynb"
GUIDE_ORDER = ["1. The configuration", "2. RMSNorm", "3. RoPE", "4. Attention and GQA", "5. SwiGLU",
               "6. The block and the model", "7. Generation with the KV cache", "8. Reading a comparison"]


def test_the_notebook_is_stored_without_outputs_in_the_guides_order():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    headings = [c.source.splitlines()[0].removeprefix("## ") for c in notebook.cells
                if c.cell_type == "markdown" and c.source.startswith("## ")]
    assert headings[:len(GUIDE_ORDER)] == GUIDE_ORDER


@pytest.mark.slow
def test_the_notebook_runs_top_to_bottom(tmp_path):
    """Every cell runs (its checks are asserts: a failed one is a cell error) and every figure is shown."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # the kernel inherits the environment: offline, the session's private cache, one thread per process
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert text.count("✓") == 9, text  # one line per check that passed
    images = sum("image/png" in o.get("data", {}) for o in outputs)
    assert images == 8  # parameters, norm, rope, attention, swiglu, kv_cache, loss vs size, the report's curves
