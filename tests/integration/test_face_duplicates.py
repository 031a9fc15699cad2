"""The same face on another account (`face_duplicate`): the selfie's embedding against every other
approved customer's, on the embedded database and the real face models. Faces come from installed
packages (scikit-image's astronaut, matplotlib's Grace Hopper) or, where present, the shared fixture
pairs (read in place)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import cv2
import matplotlib
import numpy as np
import pytest
from bson import ObjectId

from app.domain.kyc import CheckName, CheckStatus
from app.ml import tasks
from app.services.kyc.review import DecisionInput
from tests.console_cases import submitted_case
from tests.integration.test_console import Console
from tests.integration.test_kyc_api import SELFIE, case_detail, checks_done, customer, ready_case, selfie
from tests.integration.test_verification_api import encode
from tests.ml.face_fixtures import astronaut_bgr, require_fixtures, rotate

# The astronaut again, turned, zoomed and brighter: another photo of the same person.
SAME_PERSON = encode(cv2.convertScaleAbs(rotate(astronaut_bgr(), 8, 0.9), alpha=1.1, beta=10))
OTHER_PERSON = (Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg").read_bytes()


async def _approve(api: Any, kyc_id: str) -> None:
    c = api.container
    case = await c.kyc.cases.get(kyc_id)
    user = await c.users_repo.get(case.user_id)
    assert await c.transactions.run(lambda tx: c.kyc_review.record(tx, case, user, DecisionInput(approved=True)))


async def _submitted(api: Any, face: bytes) -> dict[str, Any]:
    """A customer's case through the API (Aadhaar and PAN showing the astronaut, the selfie `face`),
    its checks run by the job."""
    who = await customer(api)
    await ready_case(api, who)
    assert (await selfie(api, who, face)).status_code == 201  # the selfie replaced by `face`
    assert (await api.client.post("/kyc/submit", headers=who["headers"])).status_code == 202
    return {**who, "mine": await checks_done(api, who)}


def _face_duplicate(case: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in case["checks"] if c["name"] == "face_duplicate")


async def test_the_same_persons_selfie_on_two_accounts_is_flagged_for_review_another_persons_not(api):
    first = await _submitted(api, SELFIE)
    assert _face_duplicate(await case_detail(api, first["mine"]["kyc_id"]))["status"] == "pass"  # nobody approved yet
    await _approve(api, first["mine"]["kyc_id"])

    second, third = await _submitted(api, SAME_PERSON), await _submitted(api, OTHER_PERSON)
    flagged = await case_detail(api, second["mine"]["kyc_id"])
    check = _face_duplicate(flagged)
    assert (check["status"], check["other_cases"]) == ("review", [first["mine"]["kyc_id"]])
    assert flagged["status"] == "SUBMITTED" and flagged["risk_level"] != "Low"  # an auditor decides, never the rule
    assert _face_duplicate(await case_detail(api, third["mine"]["kyc_id"]))["status"] == "pass"
    # The customer never learns that their face was found on another account (nor that it was looked for).
    for who in (second, third):
        mine = (await api.client.get("/kyc/me", headers=who["headers"])).json()
        assert "face_duplicate" not in {c["name"] for c in mine["checks"]}
    # The auditor's console links the other case.
    console = Console(api)
    await console.staff()
    page = await console.get(f"/console/kyc/{second['mine']['kyc_id']}")
    assert page.status_code == 200
    assert f'href="/console/kyc/{first["mine"]["kyc_id"]}" class="duplicate"' in page.text


async def _embedding(api: Any, image: bytes) -> np.ndarray:
    checks = api.container.kyc_checks
    vector, _ = await checks.ml.run(tasks.selfie_faces, image, None, checks.limits)
    return vector


async def _checked(api: Any, vector: np.ndarray, name: str, *, approve: bool = False) -> tuple[Any, Any]:
    """A seeded SUBMITTED case given `vector` as its selfie's embedding, through the check (which stores it)."""
    c = api.container
    seeded = await submitted_case(c, name=name)
    case = await c.kyc.cases.get(seeded["kyc_id"])
    check = await c.kyc_checks.faces.check(case, vector)
    if approve:
        await _approve(api, case.id)
    return case, check


async def test_fixture_pairs_same_person_flagged_different_people_not(api_factory):
    pairs = require_fixtures("faces", "pairs.csv")
    rows = list(csv.DictReader(pairs.open()))
    genuine = next(r for r in rows if r["same_person"] == "1")
    impostor = next(r for r in rows if r["same_person"] == "0" and r["img_a"] == genuine["img_a"])
    api = await api_factory(job_workers=0)
    image = {n: (pairs.parents[1] / n).read_bytes() for n in (genuine["img_a"], genuine["img_b"], impostor["img_b"])}
    approved, _ = await _checked(api, await _embedding(api, image[genuine["img_a"]]), "Anil Mehta", approve=True)
    _, same = await _checked(api, await _embedding(api, image[genuine["img_b"]]), "Anil M")
    _, other = await _checked(api, await _embedding(api, image[impostor["img_b"]]), "Joseph Rao")
    assert (same.status, same.other_cases) == (CheckStatus.REVIEW, (approved.id,)), genuine
    assert (other.status, other.other_cases) == (CheckStatus.PASS, ()), impostor


async def test_embeddings_are_encrypted_at_rest_skip_the_customers_own_cases_and_go_with_the_case(api_factory):
    api = await api_factory(job_workers=0)
    c, vector = api.container, await _embedding(api, SELFIE)
    mine, _ = await _checked(api, vector, "Asha Rao", approve=True)
    raw = await c.db["kyc_doc"].find_one({"_id": ObjectId(mine.id)})
    face = raw["face"]
    assert set(face) == {"key_id", "data", "model"} and len(face["data"]) == 12 + 128 * 4 + 16  # nonce, vector, tag
    assert vector.astype("<f4").tobytes()[:16] not in face["data"]  # no clear float in the record
    faces = c.kyc_checks.faces
    assert np.allclose(np.frombuffer(c.cipher.decrypt(face["key_id"], face["data"], faces._aad(mine.id, mine.user_id)),
                                     "<f4"), vector)
    # The customer's own earlier case is never a duplicate of their own; anyone else's is.
    assert await faces.search(vector, mine.user_id) == []
    assert [case_id for case_id, _ in await faces.search(vector, "someone-else")] == [mine.id]
    # Deleted with the case: its record goes, and the index no longer names it.
    await c.db["kyc_doc"].delete_one({"_id": raw["_id"]})
    assert await faces.search(vector, "someone-else") == []
    _, check = await _checked(api, vector, "Asha R")
    assert check.status == CheckStatus.PASS


async def test_a_face_approved_on_another_instance_is_found_there(api_factory):
    """Two apps on one database, as two instances: an approval on one is in the other's next search."""
    first = await api_factory(job_workers=0)
    current, _, fingerprint = first.settings.resolve_document_keys()  # instances share their keys
    second = await api_factory(job_workers=0, mongodb_db=first.settings.mongodb_db, document_encryption_key=current,
                               document_fingerprint_key=fingerprint)
    vector = await _embedding(first, SELFIE)
    assert (await _checked(second, vector, "Ravi K"))[1].status == CheckStatus.PASS  # builds second's index
    approved, _ = await _checked(first, vector, "Ravi Kumar", approve=True)
    _, check = await _checked(second, vector, "Ravi Kumar Sharma")
    assert (check.name, check.status, check.other_cases) == (CheckName.FACE_DUPLICATE, CheckStatus.REVIEW, (approved.id,))


@pytest.mark.parametrize("threshold", [0.999])
async def test_the_threshold_is_a_setting(api_factory, threshold):
    api = await api_factory(job_workers=0, face_duplicate_threshold=threshold)
    vector = await _embedding(api, SELFIE)
    await _checked(api, vector, "Asha Rao", approve=True)
    _, check = await _checked(api, await _embedding(api, SAME_PERSON), "Asha R")
    assert check.status == CheckStatus.PASS  # cos ~0.997 < 0.999


async def test_the_index_is_built_at_start_with_the_models_preload(api_factory):
    from tests.conftest import eventually

    first = await api_factory(job_workers=0)
    approved, _ = await _checked(first, await _embedding(first, SELFIE), "Ravi Kumar", approve=True)
    current, _, fingerprint = first.settings.resolve_document_keys()
    started = await api_factory(job_workers=0, ml_preload=True, mongodb_db=first.settings.mongodb_db,
                                document_encryption_key=current, document_fingerprint_key=fingerprint)
    faces = started.container.kyc_checks.faces

    async def built() -> bool:
        return faces.index.cases == [approved.id]

    assert await eventually(built, timeout=20)  # no search has run on this instance


async def test_the_hourly_rebuild_drops_a_case_no_longer_approved(api_factory):
    api = await api_factory(job_workers=0)
    c, vector = api.container, await _embedding(api, SELFIE)
    faces = c.kyc_checks.faces
    approved, _ = await _checked(api, vector, "Asha Rao", approve=True)
    assert [case_id for case_id, _ in await faces.search(vector, "someone-else")] == [approved.id]
    await c.db["kyc_doc"].update_one({"_id": ObjectId(approved.id)}, {"$set": {"status": "SUBMITTED"}})  # reopened
    await faces.search(vector[::-1].copy(), "someone-else")  # no hit to confirm: the catch-up alone keeps it
    assert faces.index.cases == [approved.id]
    c.clock.advance(hours=1, minutes=1)
    assert await faces.search(vector, "someone-else") == [] and faces.index.cases == []
