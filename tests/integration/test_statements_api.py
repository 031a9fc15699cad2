"""Statements of account over HTTP: a PDF and a CSV whose figures are the loan view's, for the borrower
and for staff; anyone else's loan is 404. The PDF's first page is rendered to an image for a person to
look at (`/tmp/statement_page1.png`)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pypdfium2
from bson import ObjectId

from app.domain.money import rupees
from tests.conftest import bearer
from tests.integration._servicing_walk import accept_kfs
from tests.integration.lending_helpers import apply_body, borrower, make_product

D = Decimal
PAGE_PNG = "/tmp/statement_page1.png"


async def _disbursed(api, who, name: str, reference: str = "UTR20261206000123", **terms) -> str:
    product = await make_product(api, name=name, **terms)
    admin_h = bearer(await api.staff("admin"))
    applied = (await api.client.post("/loans/apply", headers=who["headers"], json=apply_body(product))).json()
    loan_id = applied["loan_id"]
    await accept_kfs(api, who, applied)
    assert (await api.client.post(f"/admin/loans/{loan_id}/approve", headers=admin_h)).status_code == 200
    r = await api.client.post(f"/admin/loans/{loan_id}/disburse", headers=admin_h, json={"payout_reference": reference})
    assert r.status_code == 200, r.text
    return loan_id


async def _statement(api, headers, loan_id: str, fmt: str):
    return await api.client.get(f"/loans/my-loans/{loan_id}/statement", headers=headers, params={"format": fmt})


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def test_a_statement_as_csv_and_pdf_matches_the_loan_view(api):
    who = await borrower(api)
    loan_id = await _disbursed(api, who, "Statement Loan A", reference="-1-1")  # a formula-like reference
    r = await api.client.post(f"/loans/my-loans/{loan_id}/repayments", headers=who["headers"], json={"amount": 12000})
    assert r.status_code == 201, r.text
    view = (await api.client.get(f"/loans/my-loans/{loan_id}", headers=who["headers"])).json()

    r = await _statement(api, who["headers"], loan_id, "csv")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"].startswith(f'attachment; filename="statement-{loan_id}-')
    rows = _rows(r.text)
    assert r.text.splitlines()[0] == "on,entry,reference,description,amount,interest,principal,charges,paid,due,outstanding_after"
    assert [row["entry"] for row in rows[:2]] == ["disbursement", "charge"]
    assert rows[0]["reference"] == "'-1-1"  # never a formula in a spreadsheet
    assert (D(rows[0]["amount"]), D(rows[1]["amount"])) == (D(str(view["amount"])), D(str(view["kfs"]["processing_fee"])))
    instalments = [row for row in rows if row["entry"] == "instalment"]
    assert len(instalments) == len(view["schedule"])
    for row, due in zip(instalments, view["schedule"], strict=True):
        assert row["on"] == due["due_date"]
        assert [D(row[k]) for k in ("amount", "interest", "principal", "paid", "due")] == [
            D(str(due["payment"])), D(str(due["interest"])), D(str(due["principal"])),
            D(str(due["interest_paid"])) + D(str(due["principal_paid"])), D(str(due["amount_left"]))]
    payments = [row for row in rows if row["entry"] == "repayment"]
    assert [(D(p["amount"]), D(p["outstanding_after"])) for p in payments] == [
        (D(str(p["amount"])), D(str(p["outstanding_after"]))) for p in view["repayments"]]
    assert D(payments[-1]["outstanding_after"]) == D(str(view["outstanding"]))
    assert [row["on"] for row in rows] == sorted(row["on"] for row in rows)

    r = await _statement(api, who["headers"], loan_id, "pdf")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF-")
    document = pypdfium2.PdfDocument(r.content)
    text = "".join(document[i].get_textpage().get_text_range() for i in range(len(document)))
    for figure in (view["amount"], view["emi"], view["outstanding"], view["paid_total"], view["outstanding_principal"],
                   view["kfs"]["processing_fee"], *(row["amount_left"] for row in view["schedule"])):
        assert rupees(D(str(figure))) in text, figure
    assert api.settings.lender_name in text and loan_id in text and "Repayment schedule" in text
    document[0].render(scale=2).to_pil().save(PAGE_PNG)


async def test_staff_read_any_statement_others_get_404_and_bad_requests_change_nothing(api):
    who, other = await borrower(api), await borrower(api)
    loan_id = await _disbursed(api, who, "Statement Loan B")
    auditor = bearer(await api.staff("auditor"))
    assert (await _statement(api, auditor, loan_id, "csv")).status_code == 200
    r = await _statement(api, other["headers"], loan_id, "pdf")
    assert r.status_code == 404 and r.json()["error_code"] == "loan_not_found"
    r = await _statement(api, who["headers"], loan_id, "xls")
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["query", "format"]
    assert (await api.client.get(f"/loans/my-loans/{loan_id}/statement")).status_code == 401
    # Not disbursed yet: no account to state.
    product = await make_product(api, name="Statement Loan C")
    applied = (await api.client.post("/loans/apply", headers=other["headers"], json=apply_body(product))).json()
    r = await _statement(api, other["headers"], applied["loan_id"], "csv")
    assert r.status_code == 409 and r.json()["error_code"] == "invalid_transition"


async def test_a_pre_closed_loans_statement_shows_the_charge_and_the_final_payment(api):
    who = await borrower(api)
    loan_id = await _disbursed(api, who, "Statement Loan D")
    assert (await api.client.post(f"/loans/my-loans/{loan_id}/pre-close", headers=who["headers"])).status_code == 200
    admin_h = bearer(await api.staff("admin"))
    assert (await api.client.post(f"/admin/loans/{loan_id}/pre-close/confirm", headers=admin_h)).status_code == 200
    view = (await api.client.get(f"/loans/my-loans/{loan_id}", headers=who["headers"])).json()
    rows = _rows((await _statement(api, who["headers"], loan_id, "csv")).text)
    final = view["repayments"][-1]
    settled = [(row["entry"], row["reference"]) for row in rows if row["entry"] in ("charge", "pre_closure")]
    assert settled == [("charge", "processing_fee"), ("charge", "prepayment_charge"), ("pre_closure", final["id"])]
    charge, closing = (row for row in rows if row["reference"] in ("prepayment_charge", final["id"]))
    assert D(closing["amount"]) == D(str(final["amount"])) and D(closing["outstanding_after"]) == 0
    # Closed on its disbursal day: no instalment ever fell due, so the statement lists none as due.
    assert [row for row in rows if row["entry"] == "instalment"] == [] and view["outstanding"] == 0
    stored = await api.container.db["loans"].find_one({"_id": ObjectId(loan_id)})
    assert D(charge["amount"]) == stored["preclosure_quote"]["prepayment_charge"].to_decimal() > 0


async def test_a_penal_charge_is_its_own_entry_and_the_payment_that_settled_it_says_so(api):
    from datetime import date, timedelta

    from app.domain.delinquency import PenalKind, PenalRule
    from tests.integration.lending_helpers import relogin

    who = await borrower(api)
    loan_id = await _disbursed(api, who, "Statement Loan E", penal_charge=PenalRule(PenalKind.FIXED, D(500)))
    first = (await api.client.get(f"/loans/my-loans/{loan_id}", headers=who["headers"])).json()["schedule"][0]
    clock = api.container.clock
    clock.advance(days=(date.fromisoformat(first["due_date"]) + timedelta(days=5) - clock.now().date()).days)
    who = await relogin(api, who)
    r = await api.client.post(f"/loans/my-loans/{loan_id}/repayments", headers=who["headers"], json={"amount": 12000})
    assert r.status_code == 201, r.text
    view = (await api.client.get(f"/loans/my-loans/{loan_id}", headers=who["headers"])).json()
    assert [(c["instalment"], D(str(c["amount"]))) for c in view["charges"]] == [(1, D(500))]
    rows = _rows((await _statement(api, who["headers"], loan_id, "csv")).text)
    penal = [row for row in rows if row["reference"].startswith("penal_charge/")]
    assert [(row["on"], D(row["amount"]), D(row["paid"]), D(row["due"])) for row in penal] == [
        (c["charged_on"], D(str(c["amount"])), D(str(c["paid"])), D(str(c["amount"])) - D(str(c["paid"])))
        for c in view["charges"]]
    payment = next(row for row in rows if row["entry"] == "repayment")
    assert D(payment["charges"]) == D(str(view["repayments"][0]["charges_paid"])) == D(500)
    assert D(payment["outstanding_after"]) == D(str(view["repayments"][0]["outstanding_after"]))
    document = pypdfium2.PdfDocument((await _statement(api, who["headers"], loan_id, "pdf")).content)
    text = document[0].get_textpage().get_text_range()
    assert "Penal charge" in text and "penal_charge/1" in text and "₹500.00" in text
    document[0].render(scale=2).to_pil().save("/tmp/statement_penal_page1.png")


async def test_a_part_prepayment_shows_its_charge_and_the_rebuilt_schedule(api):
    who = await borrower(api)
    loan_id = await _disbursed(api, who, "Statement Loan F")
    r = await api.client.post(f"/loans/my-loans/{loan_id}/prepayments", headers=who["headers"],
                              json={"amount": 20000, "keep": "instalment"})
    assert r.status_code == 201, r.text
    view = (await api.client.get(f"/loans/my-loans/{loan_id}", headers=who["headers"])).json()
    rows = _rows((await _statement(api, who["headers"], loan_id, "csv")).text)
    prepaid, quote = view["repayments"][-1], r.json()["quote"]
    assert [(row["entry"], D(row["amount"])) for row in rows if row["entry"] in ("prepayment", "charge")][-2:] == [
        ("charge", D(str(quote["prepayment_charge"]))), ("prepayment", D(str(prepaid["amount"])))]
    assert D(str(quote["prepayment_charge"])) > 0 and D(str(prepaid["amount"])) == D(str(quote["total"]))
    instalments = [row for row in rows if row["entry"] == "instalment"]
    assert [(row["on"], D(row["amount"]), D(row["due"])) for row in instalments] == [
        (due["due_date"], D(str(due["payment"])), D(str(due["amount_left"]))) for due in view["schedule"]]
    assert len(instalments) < 12  # keeping the instalment shortens the tenure
