"""The code the notebooks write out for the student is the helpers' code, character for character:
one source of truth, so the two can never drift apart."""

import ast
import inspect
import json
import textwrap
from pathlib import Path

import pytest

from helpers import augment, datasets, models, train

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def written_out(notebook: str, name: str, inside: str | None = None) -> str:
    """The source of the class or function ``name`` (a method of class ``inside``) that a code
    cell of ``notebook`` defines."""
    for cell in json.loads((NOTEBOOKS / notebook).read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        try:
            body = ast.parse(source).body
        except SyntaxError:
            continue
        if inside:
            body = [n for c in body if isinstance(c, ast.ClassDef) and c.name == inside for n in c.body]
        for node in body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name == name:
                first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
                return textwrap.dedent("\n".join(source.splitlines()[first - 1 : node.end_lineno]))
    raise AssertionError(f"{notebook} writes out no {name}")


CASES = [
    ("01_nose_tip.ipynb", "CourseCNN", None, models.CourseCNN),
    ("01_nose_tip.ipynb", "__getitem__", "KeypointDataset", datasets.KeypointDataset.__getitem__),
    ("01_nose_tip.ipynb", "run_epoch", None, train.run_epoch),
    ("02_full_face.ipynb", "Augment", None, augment.Augment),
    ("02_full_face.ipynb", "flip_labels", None, augment.flip_labels),
    ("02_full_face.ipynb", "sample", "KeypointDataset", datasets.KeypointDataset.sample),
]


@pytest.mark.parametrize("notebook, name, inside, helper", CASES, ids=[f"{c[0][:2]}-{c[1]}" for c in CASES])
def test_the_notebook_shows_the_helpers_code(notebook, name, inside, helper):
    assert written_out(notebook, name, inside) == textwrap.dedent(inspect.getsource(helper)).rstrip("\n")
