"""Score a landmark checkpoint on any dlib-XML set (images beside the XML).

    python -m helpers.evaluate --labels PATH.xml --checkpoint CKPT [--boxes labels|detector] [--out DIR]

Prints faces scored, NME in percent (mean point error over the outer-eye-corner distance,
points 36 and 45), median NME, failure rate at NME > 10 %, the CED curve's AUC up to 10 %,
Kaggle-style MAE in pixels and milliseconds per face; writes ``ced.png`` and ``per_face.csv``
into ``--out``.  With ``--boxes detector`` the project's face detector finds the faces and
each labelled face is matched to a detection; a face it misses counts as a failure (NME
infinite: in the failure rate and the CED curve, and left out of the mean NME, which the
output says).  Images that fail to decode are skipped and listed at the end, and make the
exit status 1.  The checkpoint must be a 68-point face model, and the labels a dlib XML
file with at least one face and finite coordinates; anything else is a one-line error.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from itertools import groupby
from pathlib import Path

import numpy as np

from . import metrics
from .checkpoint import has_int8_graph, load_checkpoint
from .detect import match, square
from .images import ImageError, load_image
from .landmarker import Landmarker, add_cli_options
from .landmarks68 import OUTER_EYE_CORNERS, load_dlib_xml
from .outputs import writable_folder


def cpu_ms_by_setting(checkpoint, faces, n_faces: int = 100, passes: int = 5, threads: int = 2) -> dict:
    """Milliseconds per face at batch size 1 on ``threads`` CPU threads (crop, network, mapping
    back) over the first ``n_faces`` labelled faces, with their labelled boxes, the median of
    ``passes`` passes (a busy machine has slow moments; images are decoded beforehand, not
    timed), for each way the network can run on a CPU, each with and without flip averaging,
    keyed ``(engine, "flip" or "one pass")`` where ``engine`` is
    :meth:`Landmarker.engine_name`: ``"onnxruntime"`` (float32, the default where it is
    installed), ``"onnxruntime int8"`` where the checkpoint has an int8 graph, and PyTorch in
    float32 and in its default precision (``"bfloat16"`` on CPUs that run it natively): what a
    user gets with each, and what flip averaging costs, side by side.  Settings that come to
    the same engine are timed once, and the settings' passes are taken in turn, so that a slow
    spell of a shared machine falls on all of them alike."""
    ways = [("auto", "float32"), ("torch", "auto"), ("torch", "float32")]
    if has_int8_graph(load_checkpoint(checkpoint)):
        ways.insert(1, ("auto", "int8"))
    engines = {}
    for runtime, precision in ways:
        engines.setdefault(
            Landmarker.engine_name(runtime, precision), {"runtime": runtime, "precision": precision}
        )
    settings = {
        (engine, "flip" if flip else "one pass"): {**chosen, "flip": flip}
        for engine, chosen in engines.items()
        for flip in (False, True)
    }
    return _ms_per_face(checkpoint, settings, list(faces)[:n_faces], passes, threads)


def _ms_per_face(checkpoint, settings: dict, faces, passes: int, threads: int) -> dict:
    """Milliseconds per face for each of ``settings`` (keyed as given): ``passes`` rounds in
    which each setting times one pass over ``faces``, the median of each setting's passes.
    Images are decoded beforehand, not timed."""
    import torch

    grays = {f.image_path: load_image(f.image_path) for f in faces}
    before, times = torch.get_num_threads(), {key: [] for key in settings}
    torch.set_num_threads(threads)
    try:  # built on ``threads`` threads: an ONNX Runtime session takes its number when it starts
        landmarkers = {key: Landmarker(checkpoint, device="cpu", **s) for key, s in settings.items()}
        for lm in landmarkers.values():
            lm.from_boxes(grays[faces[0].image_path], [faces[0].box])  # warm-up
        for _ in range(passes):
            for key, lm in landmarkers.items():
                start = time.perf_counter()
                for f in faces:
                    lm.from_boxes(grays[f.image_path], [f.box])
                times[key].append(1000 * (time.perf_counter() - start) / len(faces))
    finally:
        torch.set_num_threads(before)
    return {key: float(np.median(t)) for key, t in times.items()}


def evaluate(
    labels, landmarker: Landmarker, boxes: str = "labels", progress: bool = True, passes: int | None = None
) -> dict:
    """Predict every labelled face of a dlib XML file (or a list of face records); returns
    per-face rows, the summary and the skipped images.  With ``boxes="detector"`` each detected
    face is predicted ``passes`` times (:meth:`Landmarker.from_detections`; by default the
    number the checkpoint records)."""
    from tqdm import tqdm

    faces = load_dlib_xml(labels) if isinstance(labels, (str, Path)) else list(labels)
    base = Path(labels).parent if isinstance(labels, (str, Path)) else None
    n_model = landmarker.model.n_points
    if any(len(f.points) != n_model for f in faces):
        raise ValueError(
            f"the labels have {len(faces[0].points)} points per face but the model predicts {n_model}"
        )
    preds, trues, rows, skipped = [], [], [], []
    seconds, timed = 0.0, 0
    for path, group in tqdm(
        groupby(faces, key=lambda f: f.image_path),
        total=len({f.image_path for f in faces}),
        desc="evaluating",
        disable=not progress,
    ):
        group = list(group)
        try:
            gray = load_image(path)
        except ImageError as exc:
            skipped.append(str(exc))
            continue
        if boxes == "detector":
            dets = landmarker.detect(gray)
            picks = [match(dets, square(f.box)) for f in group]
            use = [dets[k] for k in picks if k is not None]
        else:
            picks = list(range(len(group)))
            use = [f.box for f in group]
        start = time.perf_counter()
        if boxes == "detector":
            found = landmarker.from_detections(gray, use, passes)
        else:
            found = landmarker.from_boxes(gray, use)
        seconds += time.perf_counter() - start
        timed += len(use)
        if not np.isfinite(found).all():
            raise ValueError(f"{path}: the model predicted non-finite coordinates (a broken checkpoint?)")
        it = iter(found)
        for face, k in zip(group, picks):
            pred = next(it) if k is not None else np.full_like(face.points, np.nan)
            preds.append(pred)
            trues.append(face.points)
            rows.append({"image": _shown(face.image_path, base), "detected": k is not None})
    preds, trues = np.array(preds), np.array(trues)
    nmes = metrics.nme(preds, trues, OUTER_EYE_CORNERS) if len(trues) else np.zeros(0)
    nmes = np.where(np.isfinite(nmes), nmes, np.inf)
    detected = np.isfinite(nmes)
    for row, e in zip(rows, nmes):
        row["nme_percent"] = 100 * e if np.isfinite(e) else ""
    summary = metrics.summary(nmes[detected], preds[detected], trues[detected]) if detected.any() else {}
    summary.update(
        faces=int(len(nmes)),
        detected=int(detected.sum()),
        failure_rate_percent=100 * float((nmes > 0.10).mean()) if len(nmes) else 0.0,
        auc=metrics.auc(nmes) if len(nmes) else 0.0,
        ms_per_face=1000 * seconds / max(timed, 1),
        boxes=boxes,
    )
    return {"summary": summary, "rows": rows, "nmes": nmes, "pred": preds, "true": trues, "skipped": skipped}


def choose_passes(faces, landmarker: Landmarker, candidates=(1, 2, 3, 4)) -> tuple[int, dict[int, float]]:
    """The number of passes per detected face with the lowest NME on ``faces`` (validation
    faces, never the test set), and the NME (%) of each candidate, for
    :func:`helpers.train.record_inference` (``passes``).

    Why it is chosen rather than fixed: each pass re-centres the crop on the last prediction,
    which pulls a face the detector boxed badly back towards the crop the model was trained on;
    how many passes that takes differs between models, and each pass costs as much as the
    first.  Ties go to fewer passes."""
    faces = list(faces)
    scores = {
        n: evaluate(faces, landmarker, "detector", progress=False, passes=n)["summary"].get(
            "nme_percent", float("inf")
        )
        for n in sorted(candidates)
    }
    return min(scores, key=lambda n: (round(scores[n], 3), n)), scores


def _shown(path: Path, base: Path | None) -> str:
    """An image's name as the CSV shows it: relative to the labels' folder where it lies inside."""
    return str(path.relative_to(base)) if base is not None and path.is_relative_to(base) else str(path)


def write_outputs(result: dict, out: Path, label: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    with open(out / "per_face.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, ["image", "detected", "nme_percent"])
        writer.writeheader()
        writer.writerows(result["rows"])
    x, y = metrics.ced(result["nmes"])
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(100 * x, y, label=f"{label} AUC {result['summary']['auc']:.3f}".strip())
    ax.set_xlabel("NME (% of outer-eye-corner distance)")
    ax.set_ylabel("fraction of faces")
    ax.set_title("Cumulative error distribution")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.savefig(out / "ced.png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def format_summary(s: dict) -> str:
    what = "detection" if s["boxes"] == "detector" else "box"
    lines = [
        f"faces scored:        {s['faces']} ({s['detected']} with a {what})",
        f"NME:                 {s.get('nme_percent', float('nan')):.2f} %"
        + (" (detected faces)" if s["boxes"] == "detector" else ""),
        f"median NME:          {s.get('median_nme_percent', float('nan')):.2f} %",
        f"failure rate (>10%): {s['failure_rate_percent']:.2f} %"
        + (" (missed faces count as failures)" if s["boxes"] == "detector" else ""),
        f"AUC@10%:             {s['auc']:.4f}",
        f"MAE (Kaggle):        {s.get('mae_px', float('nan')):.2f} px",
        f"time:                {s['ms_per_face']:.2f} ms per face (landmarks only)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", required=True, type=Path, help="dlib XML file, images resolved beside it")
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--boxes", choices=("labels", "detector"), default="labels")
    parser.add_argument("--out", type=Path, help="folder for ced.png and per_face.csv")
    add_cli_options(parser)
    args = parser.parse_args(argv)
    try:
        if args.out:
            writable_folder(args.out)
        load_dlib_xml(args.labels)  # bad labels are reported before the model is loaded
        lm = Landmarker.from_cli_options(args)
        if args.boxes == "detector":
            lm.face_detector()  # built now, so a missing dlib is one line before any work
        result = evaluate(args.labels, lm, args.boxes)
        if args.out:
            write_outputs(result, args.out, args.checkpoint.stem)
    except (OSError, ValueError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(format_summary(result["summary"]))
    if args.out:
        print(f"wrote {args.out / 'ced.png'} and {args.out / 'per_face.csv'}")
    if result["skipped"]:
        print(f"skipped {len(result['skipped'])} images that did not decode (their faces are not scored):")
        for s in result["skipped"]:
            print(f"  {s}")
    return 1 if result["skipped"] else 0


if __name__ == "__main__":
    sys.exit(main())


def write_kaggle_csv(pred: np.ndarray, path: Path) -> None:
    """Kaggle-format submission: ``Id,Predicted``, one row per coordinate (x before y), faces
    in the order given (the test XML's), Ids from 0."""
    flat = np.asarray(pred, np.float64).reshape(-1)
    with open(path, "w", newline="") as fh:
        fh.write("Id,Predicted\n")
        fh.writelines(f"{i},{v:.4f}\n" for i, v in enumerate(flat))
