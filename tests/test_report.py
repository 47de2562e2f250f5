import json
from pathlib import Path

from helpers import report


def test_metrics_merge_and_smoke_runs_never_write(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    monkeypatch.setenv("FKP_SMOKE", "")
    report.update_metrics({"a": 1.0}, path)
    report.update_metrics(
        {"imm_nose_val_mean_px": 5.0, "heatmap_ibug_test_nme_boxes_validation_run": None}, path
    )
    assert json.loads(path.read_text()) == {
        "a": 1.0,
        "imm_nose_val_mean_px": 5.0,
        "heatmap_ibug_test_nme_boxes_validation_run": None,
    }
    monkeypatch.setenv("FKP_SMOKE", "1")
    merged = report.update_metrics({"a": 99.0}, path)
    assert merged["a"] == 99.0 and json.loads(path.read_text())["a"] == 1.0
    table = report.results_table(path)
    assert "| IMM nose tip, soft-argmax net (px @ 640x480) | 5.00 | <= 8 |" in table and "99" not in table
    assert "without the validation faces" not in table  # a model the last run did not make has no row


def test_the_command_line_prints_the_table_and_exports_the_notebooks_it_names(monkeypatch, capsys):
    """``--help`` and ``--table`` are options, not notebooks to export (``--help`` once ran
    nbconvert on a file named so)."""
    exported = []
    monkeypatch.setattr(report, "export_html", lambda notebooks: exported.append(notebooks))
    monkeypatch.setattr(report, "results_table", lambda: "| result |")
    report.main(["--table"])
    assert capsys.readouterr().out == "| result |\n" and exported == []
    report.main(["notebooks/01_nose_tip.ipynb"])
    assert exported == [[Path("notebooks/01_nose_tip.ipynb").resolve()]]
    report.main([])
    assert exported[-1] is None


def test_300w_targets_say_they_are_set_on_held_out_faces():
    """The table shows AFW figures; the 300-W bars are set on other, held-out faces, so a bar
    printed bare beside an AFW figure would claim a pass or a miss that was never scored."""
    bars = {label: target for _, label, target in report.ROWS if label.startswith("300-W") and target}
    assert bars and all(target.startswith(report.HELD_OUT) for target in bars.values())
