"""The name and date of birth an approved KYC case verified are pinned on the user in the approval's
own write (inside the decision's transaction), and users approved before that are pinned at start-up."""

from __future__ import annotations

from bson import ObjectId

from app.domain.users import KycStatus


async def test_approval_pins_the_name_and_date_of_birth_in_the_decisions_transaction(api):
    tokens = await api.customer()
    users, now = api.container.users_repo, api.container.clock.now()
    await users.save_profile(tokens["user_id"], profile={"dob": "1990-04-12"}, name="Asha Rao", now=now)
    await users.set_kyc_status(tokens["user_id"], KycStatus.SUBMITTED, now)
    assert (await users.get(tokens["user_id"])).verified_identity is None

    async def step(tx):
        await tx.users.set_kyc_status(tokens["user_id"], KycStatus.APPROVED, now)

    await api.container.transactions.run(step)
    user = await users.get(tokens["user_id"])
    assert user.kyc_status == KycStatus.APPROVED
    assert {k: user.verified_identity[k] for k in ("name", "dob")} == {"name": "Asha Rao", "dob": "1990-04-12"}
    assert user.identity["dob"] == "1990-04-12"


async def test_users_approved_before_pinning_are_pinned_at_start_up(api):
    tokens = await api.customer()
    collection = api.container.db["user"]
    await collection.update_one({"_id": ObjectId(tokens["user_id"])},
                                {"$set": {"kyc_status": "APPROVED", "profile": {"dob": "1985-01-31"}}})
    await api.container.users_repo.ensure_indexes()
    await api.container.users_repo.ensure_indexes()  # twice: idempotent
    stored = await collection.find_one({"_id": ObjectId(tokens["user_id"])})
    assert stored["verified_identity"]["name"] == "Asha Rao" and stored["verified_identity"]["dob"] == "1985-01-31"
    # A save refused by the guard changes nothing: the write itself checks the KYC status.
    refused = await api.container.users_repo.save_profile(tokens["user_id"], profile={"dob": "1950-01-01"},
                                                          name=None, now=api.container.clock.now(), identity_open=True)
    assert refused is None
    assert (await collection.find_one({"_id": ObjectId(tokens["user_id"])}))["profile"] == {"dob": "1985-01-31"}
