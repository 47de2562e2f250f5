"""The writeup's outputs: headline figures merged into ``report/metrics.json`` and every
notebook exported to ``report/<name>.html``.

Usage: ``python -m helpers.report`` exports the notebooks as they are (with their outputs).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from . import config

METRICS = config.REPORT_DIR / "metrics.json"


def update_metrics(values: dict, path: Path = METRICS) -> dict:
    """Merge ``values`` into the metrics file (other notebooks' keys are kept) and return it all.

    A smoke run (``FKP_SMOKE=1``) never writes: its figures mean nothing.
    """
    current = json.loads(path.read_text()) if path.exists() else {}
    current.update(values)
    if not config.smoke():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    return current


def export_html(notebooks: list[Path] | None = None, out_dir: Path = config.REPORT_DIR) -> list[Path]:
    """``jupyter nbconvert --to html`` for each notebook, into ``out_dir``."""
    notebooks = notebooks or sorted((config.ROOT / "notebooks").glob("*.ipynb"))
    out = []
    for nb in notebooks:
        subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", "--output-dir", str(out_dir), str(nb)],
                       check=True, capture_output=True)
        out.append(out_dir / (nb.stem + ".html"))
        print(f"exported {out[-1].relative_to(config.ROOT)}")
    return out


if __name__ == "__main__":
    export_html([Path(p).resolve() for p in sys.argv[1:]] or None)
