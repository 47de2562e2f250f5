"""The CUDA preset's code path, run on a CPU: each notebook in smoke mode with ``FKP_PRESET=cuda``,
so a typo in the GPU settings cannot wait for a GPU user to find it."""

from pathlib import Path

import pytest

from helpers import config

papermill = pytest.importorskip("papermill")

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_the_preset_follows_the_device_unless_told(monkeypatch):
    monkeypatch.delenv("FKP_PRESET", raising=False)
    assert config.preset("cpu") == "cpu" and config.preset("cuda") == "cuda"
    monkeypatch.setenv("FKP_PRESET", "CUDA")
    assert config.preset("cpu") == "cuda"
    monkeypatch.setenv("FKP_PRESET", "tpu")
    with pytest.raises(ValueError, match="FKP_PRESET='tpu'"):
        config.preset("cpu")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_cuda_preset_runs_on_a_cpu(notebook, tmp_path, monkeypatch):
    monkeypatch.setenv("FKP_SMOKE", "1")
    monkeypatch.setenv("FKP_PRESET", "cuda")
    monkeypatch.setenv("FKP_DEVICE", "cpu")
    monkeypatch.setenv("FKP_CHECKPOINT_DIR", str(tmp_path / "checkpoints"))  # not the CPU preset's runs
    ran = papermill.execute_notebook(
        str(notebook), str(tmp_path / notebook.name), cwd=str(notebook.parent), progress_bar=False
    )
    parameters = next(c for c in ran.cells if "parameters" in c.metadata.get("tags", []))
    printed = "".join(o.get("text", "") for o in parameters.outputs)
    assert "CUDA preset" in printed
