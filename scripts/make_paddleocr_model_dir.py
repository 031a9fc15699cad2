"""Build a local model folder for the optional PaddleOCR backend from the ONNX files
that ship inside the `rapidocr` wheel, so PaddleOCR never downloads anything:

    python scripts/make_paddleocr_model_dir.py /srv/models/paddleocr
    OCR_BACKEND=paddleocr OCR_MODEL_DIR=/srv/models/paddleocr kycflow ...

Layout written (what PaddleX 3.x reads for a local model with engine="onnxruntime"):

    <out>/det/inference.onnx   PP-OCRv6_det_small.onnx from the wheel
    <out>/det/inference.yml    Global.model_name: PP-OCRv6_small_det, DB pre/post-processing
    <out>/rec/inference.onnx   PP-OCRv6_rec_small.onnx from the wheel
    <out>/rec/inference.yml    Global.model_name: PP-OCRv6_small_rec, CTC decode + character_dict

PaddleX picks the file `inference.onnx` (`paddlex.constants.MODEL_FILE_PREFIX`) and
reads `inference.yml`; `Global.model_name` must equal the model name PaddleOCR is given
(`PaddleOcrEngine` passes PP-OCRv6_small_det / PP-OCRv6_small_rec). The yml contents
mirror what PaddleX's own converter writes for these models
(`paddlex/modules/base/utils/pdparams2safetensors/inference_meta.py`). The recognizer's
character list (18,708 symbols; CTC adds "blank" in front and " " at the end, 18,710
classes) is not a file in the wheel: it is the `character` entry of the rec ONNX
metadata, which RapidOCR reads the same way.

Needs only onnxruntime and PyYAML (both in the main environment), not paddleocr.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import yaml

DET_NAME = "PP-OCRv6_small_det"
REC_NAME = "PP-OCRv6_small_rec"
DET_ONNX = "PP-OCRv6_det_small.onnx"
REC_ONNX = "PP-OCRv6_rec_small.onnx"


def rapidocr_models_dir() -> Path:
    import rapidocr

    return Path(rapidocr.__file__).parent / "models"


def det_config() -> dict:
    return {
        "Global": {"model_name": DET_NAME},
        "PreProcess": {
            "transform_ops": [
                {"DecodeImage": {"channel_first": False, "img_mode": "BGR"}},
                {"DetLabelEncode": None},
                {"DetResizeForTest": {"resize_long": 960}},
                {
                    "NormalizeImage": {
                        "mean": [0.485, 0.456, 0.406],
                        "std": [0.229, 0.224, 0.225],
                        "scale": "1./255.",
                        "order": "hwc",
                    }
                },
                {"ToCHWImage": None},
                {"KeepKeys": {"keep_keys": ["image", "shape", "polys", "ignore_tags"]}},
            ]
        },
        "PostProcess": {
            "name": "DBPostProcess",
            "thresh": 0.3,
            "box_thresh": 0.6,
            "max_candidates": 1000,
            "unclip_ratio": 1.5,
        },
    }


def rec_config(characters: list[str]) -> dict:
    return {
        "Global": {"model_name": REC_NAME},
        "PreProcess": {
            "transform_ops": [
                {"DecodeImage": {"channel_first": False, "img_mode": "BGR"}},
                {"MultiLabelEncode": {"gtc_encode": "NRTRLabelEncode"}},
                {"RecResizeImg": {"image_shape": [3, 48, 320]}},
                {"KeepKeys": {"keep_keys": ["image", "label_ctc", "label_gtc", "length", "valid_ratio"]}},
            ]
        },
        "PostProcess": {"name": "CTCLabelDecode", "character_dict": characters},
    }


def rec_characters(rec_onnx: Path) -> list[str]:
    """The character list embedded in the rec model (metadata key `character`, one per line),
    checked against the model's output width (characters + blank + space)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(rec_onnx), providers=["CPUExecutionProvider"])
    raw = sess.get_modelmeta().custom_metadata_map.get("character")
    if not raw:
        raise SystemExit(f"{rec_onnx} has no embedded 'character' metadata; cannot build rec/inference.yml")
    chars = raw.split("\n")
    classes = sess.get_outputs()[0].shape[-1]
    if isinstance(classes, int) and classes != len(chars) + 2:
        raise SystemExit(f"{rec_onnx}: {len(chars)} characters but {classes} output classes (expected chars + 2)")
    return chars


def _write_yaml(path: Path, data: dict) -> None:
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=1_000_000)
    # PaddleX reads it back with yaml.FullLoader: make sure every character survives.
    if yaml.load(text, Loader=yaml.FullLoader) != data:
        raise SystemExit(f"YAML round-trip changed {path}")
    path.write_text(text, encoding="utf-8")


def build(out_dir: str | Path, source_dir: str | Path | None = None, overwrite: bool = False) -> Path:
    """Write <out_dir>/det and <out_dir>/rec; returns out_dir."""
    src = Path(source_dir) if source_dir else rapidocr_models_dir()
    out = Path(out_dir)
    det_src, rec_src = src / DET_ONNX, src / REC_ONNX
    for p in (det_src, rec_src):
        if not p.is_file():
            raise SystemExit(f"missing {p} (is rapidocr==3.10.0 installed?)")
    for sub in ("det", "rec"):
        d = out / sub
        if d.exists() and any(d.iterdir()) and not overwrite:
            raise SystemExit(f"{d} is not empty (use --overwrite)")
        d.mkdir(parents=True, exist_ok=True)

    shutil.copyfile(det_src, out / "det" / "inference.onnx")
    _write_yaml(out / "det" / "inference.yml", det_config())
    shutil.copyfile(rec_src, out / "rec" / "inference.onnx")
    _write_yaml(out / "rec" / "inference.yml", rec_config(rec_characters(rec_src)))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", help="folder to create (det/ and rec/ go inside)")
    ap.add_argument("--source", help="folder with the PP-OCRv6 ONNX files (default: the rapidocr wheel's models/)")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing det/ and rec/")
    args = ap.parse_args(argv)
    out = build(args.out_dir, args.source, args.overwrite)
    print(f"wrote {out}/det and {out}/rec; run with OCR_BACKEND=paddleocr OCR_MODEL_DIR={out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
