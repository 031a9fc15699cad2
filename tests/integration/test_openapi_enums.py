"""Response and request models take the domain's enums: /openapi.json names each one as a schema
of its own, with exactly the domain's values, so generated clients get one typed enum per concept."""

from __future__ import annotations

from enum import StrEnum

import pytest

from app.domain.jobs import JobStatus
from app.domain.kyc import CaseStatus, ChecksState, CheckStatus, CustomerCheckState, RiskLevel
from app.domain.loan_schedule import RepaymentFrequency
from app.domain.loans import LoanStatus, LoanType, RepaymentKind
from app.domain.users import KycStatus, Role, UserStatus


@pytest.fixture(scope="module")
def schemas():
    from app.main import create_app

    return create_app().openapi()["components"]["schemas"]


def _enum_of(schemas, model: str, field: str) -> str:
    prop = schemas[model]["properties"][field]
    refs = [prop.get("$ref")] + [option.get("$ref") for option in prop.get("anyOf", [])]
    return next(ref for ref in refs if ref).rsplit("/", 1)[1]


@pytest.mark.parametrize(("model", "field", "enum"), [
    ("LoanSummary", "status", LoanStatus), ("LoanSummary", "product_type", LoanType),
    ("LoanSummary", "repayment_frequency", RepaymentFrequency), ("ProductIn", "type", LoanType),
    ("ProductOut", "max_risk_level", RiskLevel), ("RepaymentOut", "kind", RepaymentKind),
    ("CaseDetail", "status", CaseStatus), ("CaseDetail", "checks_state", ChecksState),
    ("CaseDetail", "risk_level", RiskLevel), ("CheckOut", "status", CheckStatus),
    ("CustomerCheckOut", "state", CustomerCheckState), ("UserOut", "role", Role), ("UserOut", "status", UserStatus),
    ("UserOut", "kyc_status", KycStatus), ("JobOut", "status", JobStatus),
])
def test_a_domain_enum_is_one_named_schema_with_its_values(schemas, model: str, field: str, enum: type[StrEnum]):
    name = _enum_of(schemas, model, field)
    assert name == enum.__name__ and schemas[name]["enum"] == [member.value for member in enum]


def test_renamed_fields_keep_their_api_names(schemas):
    """Fields read from differently named attributes (`loan_id` from `Loan.id`) are documented under the
    name the API answers with, never the attribute's."""
    assert {"loan_id", "product_name", "bank_id", "repayment_frequency"} <= set(schemas["LoanSummary"]["properties"])
    assert {"kyc_id", "document_number"} <= set(schemas["CaseDetail"]["properties"]) | set(
        schemas["DocumentOut"]["properties"])
    assert not {"id", "frequency", "number_masked", "kyc_score"} & (
        set(schemas["LoanSummary"]["properties"]) | set(schemas["DocumentOut"]["properties"])
        | set(schemas["UserSummary"]["properties"]))


def test_every_answer_is_documented_under_the_names_it_answers_with(schemas):
    """Each response model in the spec lists exactly the fields its bodies carry (e.g. `grievance_id`, not
    the `id` attribute it is read from): a renamed field's alias must put the API name first."""
    from pydantic import BaseModel

    from app.api.schemas.common import Out

    def models(cls: type[BaseModel]):
        for sub in cls.__subclasses__():
            yield sub
            yield from models(sub)

    wrong = {m.__name__: sorted(set(schemas[m.__name__]["properties"]) ^ set(m.model_json_schema(mode="serialization")
                                                                            ["properties"]))
             for m in models(Out) if m.__name__ in schemas and "properties" in schemas[m.__name__]}
    assert {name: diff for name, diff in wrong.items() if diff} == {}
