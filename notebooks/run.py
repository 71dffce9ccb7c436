"""Execute the notebooks top to bottom, as a person would, and fail on the first error.

    python notebooks/run.py [NOTEBOOK ...]   # default: every notebooks/*.ipynb, in name order

They read the lake named by CLIPLAKE_LAKE (default: demo/lake) and the models under CLIPLAKE_MODELS
(default: demo/models). The files in git keep no outputs; executed copies are not written back.
"""

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
CELL_TIMEOUT_S = 900


def execute(path: "str | Path") -> nbformat.NotebookNode:
    """The notebook at ``path`` executed in a fresh Python kernel started in ``notebooks/``
    (the environment of this process, so CLIPLAKE_LAKE reaches it); raises on a cell's error."""
    notebook = nbformat.read(str(path), as_version=4)
    NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(HERE)}},
                   extra_arguments=["--IPKernelApp.log_level=ERROR"]).execute()  # no warning about its local TCP ports
    return notebook


def images(notebook: nbformat.NotebookNode, tag: str) -> list[bytes]:
    """The PNG images a cell tagged ``tag`` displayed."""
    import base64

    return [base64.b64decode(output["data"]["image/png"])
            for cell in notebook.cells if tag in cell.get("metadata", {}).get("tags", [])
            for output in cell.get("outputs", []) if "image/png" in output.get("data", {})]


def text(notebook: nbformat.NotebookNode, tag: str) -> str:
    """What a cell tagged ``tag`` printed and displayed, as plain text."""
    parts = []
    for cell in notebook.cells:
        if tag in cell.get("metadata", {}).get("tags", []):
            for output in cell.get("outputs", []):
                parts.append(output.get("text", "") or output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def main(paths: list[str]) -> int:
    for path in paths or sorted(HERE.glob("*.ipynb")):
        started = time.monotonic()
        execute(path)
        print(f"{Path(path).name}: ran in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
