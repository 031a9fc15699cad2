"""The generated evaluation set: `python -m tests.ml.generated_set OUT [--count 300]`
renders documents of every class the service reads, with the degradations a phone photo
adds, and writes `OUT/expected.csv` for `kycflow eval ocr OUT/expected.csv`.

Deterministic (document `i` is always the same pixels). Classes, in turn: the five ICAO
MRZ formats, Aadhaar front, back, bilingual and masked (e-Aadhaar), PAN, driving licence
and voter ID. Degradations, in turn: none, blur, JPEG quality 30-90, rotation (±15° for
cards, ±8° for MRZ pages), perspective, 600 px wide, and a busy background around the
document. Needs `../shared/fonts` (OCR-B, Devanagari); classes whose font is missing are
left out, and the command says so.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from pathlib import Path

import cv2
import numpy as np

from app.domain.documents import resolve_yymmdd, verhoeff_check_digit
from tests.ml import cards, mrz_cards

MRZ_CLASSES = ["TD1", "TD2", "TD3", "MRV-A", "MRV-B"]
CARD_CLASSES = ["aadhaar_front", "aadhaar_back", "aadhaar_bilingual", "aadhaar_masked", "pan", "driving_licence",
                "voter_id"]
DEGRADATIONS = ["none", "blur", "jpeg", "rotate", "perspective", "low_res", "busy_background"]
NAMES = [("Rahul Kumar Sharma", "Suresh Kumar Sharma"), ("Priya Nair", "Gopal Nair"), ("Amit Verma", "Rakesh Verma"),
         ("Sneha Iyer", "Ramesh Iyer"), ("Mohammed Irfan Khan", "Salim Khan"), ("Kavita Reddy", "Venkat Reddy"),
         ("Arjun Mehta", "Dinesh Mehta"), ("Lakshmi Pillai", "Mohan Pillai")]


def _person(i: int) -> cards.Person:
    rng = random.Random(i)
    name, father = NAMES[i % len(NAMES)]
    seed = str(rng.randint(2, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(10))
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    pan = "".join(rng.choice(letters) for _ in range(3)) + "P" + name.split()[-1][0].upper()
    pan += f"{rng.randint(0, 9999):04d}" + rng.choice(letters)
    return cards.Person(name=name, father=father, dob=f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(1950, 2004)}",
                        gender="Male" if i % 2 == 0 else "Female", aadhaar=seed + verhoeff_check_digit(seed), pan=pan,
                        address=(f"S/O {father}, {rng.randint(1, 99)} MG Road,", "Shivaji Nagar, Pune,",
                                 f"Maharashtra - {rng.randint(400001, 499999)}"))  # fmt: skip


def _busy(img: np.ndarray, rng: random.Random) -> np.ndarray:
    """The document on a cluttered table: random coloured blocks and lines around it."""
    h, w = img.shape[:2]
    canvas = np.zeros((int(h * 1.3), int(w * 1.3), 3), np.uint8)
    canvas[:] = (rng.randint(60, 200), rng.randint(60, 200), rng.randint(60, 200))
    for _ in range(40):
        x, y = rng.randint(0, canvas.shape[1]), rng.randint(0, canvas.shape[0])
        color = (rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255))
        cv2.line(canvas, (x, y), (x + rng.randint(-300, 300), y + rng.randint(-300, 300)), color, rng.randint(1, 6))
    y0, x0 = (canvas.shape[0] - h) // 2, (canvas.shape[1] - w) // 2
    canvas[y0 : y0 + h, x0 : x0 + w] = img
    return canvas


def degrade(img: np.ndarray, kind: str, rng: random.Random, max_rotation: float) -> np.ndarray:
    if kind == "blur":
        return cards.blur(img, rng.uniform(0.8, 1.5))
    if kind == "jpeg":
        return cards.jpeg(img, rng.randint(30, 90))
    if kind == "rotate":
        return cards.rotate_full(img, rng.choice([-1, 1]) * rng.uniform(3, max_rotation))
    if kind == "perspective":
        return cards.perspective(img, rng.uniform(0.04, 0.09))
    if kind == "low_res":
        return cards.scale(img, 600 / img.shape[1])
    if kind == "busy_background":
        return _busy(img, rng)
    return img


def document(i: int, cls: str) -> tuple[np.ndarray, dict[str, str]]:
    """Document `i` of class `cls`, undegraded, and its expected fields."""
    if cls in MRZ_CLASSES:
        p = mrz_cards.person_for(cls, i)
        background = ["plain", "pattern", "dark"][i % 3]
        img = mrz_cards.render(p, background=background, caption=i % 2 == 0)
        return img, {"document_number_raw": p.number, "full_name": f"{p.given} {p.surname}",
                     "date_of_birth": resolve_yymmdd(p.dob, expiry=False) or "",
                     "expiry_date": resolve_yymmdd(p.expiry, expiry=True) or "", "number_valid": "true"}
    p = _person(i)
    d, m, y = p.dob.split("/")
    iso = f"{y}-{m}-{d}"
    font = ["dejavu-sans", "dejavu-serif", "pil-default"][i % 3] if "dejavu-sans" in cards.available_fonts() else "pil-default"
    if cls == "aadhaar_front":
        return cards.aadhaar_front(p, font=font), {"document_number_raw": p.aadhaar, "full_name": p.name,
                                                   "date_of_birth": iso, "number_valid": "true"}
    if cls == "aadhaar_back":
        return cards.aadhaar_back(p, font=font), {"document_number_raw": p.aadhaar, "address": " ".join(p.address),
                                                  "number_valid": "true"}
    if cls == "aadhaar_bilingual":
        return cards.aadhaar_front_bilingual(p, font=font), {"document_number_raw": p.aadhaar, "full_name": p.name,
                                                             "date_of_birth": iso, "number_valid": "true"}
    if cls == "aadhaar_masked":
        return cards.aadhaar_front_bilingual(p, masked=True, font=font), {
            "document_number": f"XXXX XXXX {p.aadhaar[-4:]}", "full_name": p.name, "date_of_birth": iso}
    if cls == "pan":
        return cards.pan_card(p, font=font), {"document_number_raw": p.pan, "full_name": p.name.upper(),
                                              "father_name": p.father.upper(), "date_of_birth": iso,
                                              "number_valid": "true"}
    if cls == "driving_licence":
        number = f"MH{i % 50 + 1:02d} {2000 + i % 25}{i * 7919 % 10_000_000:07d}"
        return cards.driving_licence(p, number=number, font=font), {
            "document_number_raw": number.replace(" ", ""), "full_name": p.name.upper(), "date_of_birth": iso,
            "number_valid": "true"}
    epic = "".join("ABCDEFGHJKLMNPRSTUVWXYZ"[(i * k) % 23] for k in (3, 5, 7)) + f"{i * 104729 % 10_000_000:07d}"
    return cards.voter_id(p, epic=epic, font=font), {"document_number_raw": epic, "full_name": p.name.upper(),
                                                     "date_of_birth": iso, "number_valid": "true"}


def classes() -> tuple[list[str], list[str]]:
    """Classes this machine can render, and the reasons for any left out."""
    out, missing = [], []
    if mrz_cards.fonts_present():
        out += MRZ_CLASSES
    else:
        missing.append(f"MRZ classes: {mrz_cards.OCRB} not found")
    out += [c for c in CARD_CLASSES if c != "aadhaar_bilingual" and c != "aadhaar_masked" or cards.devanagari_present()]
    if not cards.devanagari_present():
        missing.append(f"bilingual and masked Aadhaar: {cards.DEVANAGARI_FONT} not found")
    return out, missing


def generate(out_dir: Path, count: int = 300) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    kinds, missing = classes()
    for reason in missing:
        print(f"left out: {reason}", file=sys.stderr)
    columns = ["file", "class", "degradation", "document_number_raw", "document_number", "full_name", "father_name",
               "date_of_birth", "expiry_date", "address", "number_valid"]
    csv_path = out_dir / "expected.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        for i in range(count):
            cls = kinds[i % len(kinds)]
            kind = DEGRADATIONS[i % len(DEGRADATIONS)]  # 12 classes x 7: every pairing within 84
            rng = random.Random(1000 + i)
            img, expected = document(i, cls)
            img = degrade(img, kind, rng, 8.0 if cls in MRZ_CLASSES else 15.0)
            name = f"{i:04d}_{cls}_{kind}.jpg"
            cv2.imwrite(str(out_dir / name), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
            writer.writerow({"file": name, "class": cls, "degradation": kind, **expected})
    return csv_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--count", type=int, default=300)
    args = parser.parse_args(argv)
    print(generate(args.out, args.count))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
