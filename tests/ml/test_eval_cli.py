"""`kycflow eval`: figures on generated data, and on the public fixtures when present."""

from __future__ import annotations

import csv
import json

import cv2
import pytest
from skimage import data

from app.cli import main
from tests.ml import cards
from tests.ml.face_fixtures import require_fixtures


def run_eval(capsys, *args: str) -> dict:
    assert main(["eval", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_ocr_eval_on_generated_cards(tmp_path, capsys):
    person = cards.Person()
    cv2.imwrite(str(tmp_path / "pan.png"), cards.pan_card(person))
    cv2.imwrite(str(tmp_path / "aadhaar.png"), cards.aadhaar_front(person))
    with (tmp_path / "expected.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "full_name", "date_of_birth", "document_number"])
        writer.writerow(["pan.png", person.name.upper(), "1990-08-15", "XXXXXX234K"])
        writer.writerow(["aadhaar.png", person.name, "1990-08-15", "XXXX XXXX " + person.aadhaar[-4:]])
    report = run_eval(capsys, "ocr", str(tmp_path / "expected.csv"))
    assert report["documents"] == 2 and report["documents_fully_correct"] == 2, report["details"]
    assert report["field_accuracy"] == {"date_of_birth": 1.0, "document_number": 1.0, "full_name": 1.0}


def test_faces_eval_on_generated_pairs(tmp_path, capsys):
    face = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(tmp_path / "a.jpg"), face)
    cv2.imwrite(str(tmp_path / "b.jpg"), cv2.flip(face, 1))
    cv2.imwrite(str(tmp_path / "none.jpg"), cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR))
    (tmp_path / "pairs.csv").write_text("img_a,img_b,same_person\na.jpg,b.jpg,1\na.jpg,none.jpg,0\n")
    report = run_eval(capsys, "faces", str(tmp_path))
    assert report["pairs"] == 1 and report["accuracy"] == 1.0 and report["skipped_no_face"] == 1
    assert report["images_without_face"] == ["none.jpg"]


def test_faces_eval_on_the_public_pairs(capsys):
    report = run_eval(capsys, "faces", str(require_fixtures("faces", "pairs.csv")))
    assert report["pairs"] == 120 and report["accuracy"] >= 0.98
    assert report["false_accept_rate"] <= 0.02 and report["false_reject_rate"] <= 0.06


def test_ocr_eval_on_the_specimen_passports(capsys):
    report = run_eval(capsys, "ocr", str(require_fixtures("documents")))
    assert report["documents"] == 4 and report["documents_fully_correct"] == 4


@pytest.mark.slow
def test_liveness_eval_on_the_public_clips(capsys):
    report = run_eval(capsys, "liveness", str(require_fixtures("liveness")))
    assert report["blink_count_exact"] == "1/1" and report["head_turns_as_annotated"] == "3/3"
    assert report["stills_caught"] == "2/2"


def test_ocr_eval_on_the_generated_set(tmp_path, capsys):
    from tests.ml import generated_set, mrz_cards

    if not mrz_cards.fonts_present():
        pytest.skip(f"{mrz_cards.OCRB} not found (MRZ typeface)")
    csv_path = generated_set.generate(tmp_path, count=3)  # TD1, TD2, TD3, undegraded... then blur
    report = run_eval(capsys, "ocr", str(csv_path))
    assert report["documents"] == 3 and set(report["per_class"]) == {"TD1", "TD2", "TD3"}
    assert report["wrong_numbers_reported_valid"] == 0
    assert report["numbers_valid"] == 1.0, report["details"]
    assert all(c["field_accuracy"]["document_number_raw"] == 1.0 for c in report["per_class"].values())
