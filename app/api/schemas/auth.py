"""Auth request and response bodies."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.api.schemas.common import Input, Out, PersonName, UtcDatetime

Identifier = Field(
    description="An email address, or a phone number in E.164 form (`+919876543210`); a bare 10-digit Indian "
                "mobile number (first digit 6-9, e.g. `9876543210`) is read as +91. Anything else is 400 "
                "`invalid_identifier`. Only an identifier whose own code was verified signs in, gets codes or "
                "resets the password.",
    examples=["asha@example.com"], min_length=3, max_length=254)
OtpCode = Field(description="The 6-digit code", max_length=6, pattern=r"^\d{6}$", examples=["123456"])
Password = Field(min_length=1, max_length=128, examples=["correct-horse-battery"])


class RegisterRequest(Input):
    model_config = ConfigDict(json_schema_extra={"example": {
        "email": "asha@example.com", "phone": "+919876543210", "password": "correct-horse-battery", "name": "Asha Rao"}})

    email: str | None = Field(None, max_length=254)
    phone: str | None = Field(None, max_length=20, description=(
        "E.164, e.g. +919876543210 (a 10-digit Indian mobile is read as +91). Given alone, the code goes "
        "here. Given beside an email it is only a claim until confirmed: sign in, then `POST /auth/resend-otp` "
        "and `POST /auth/verify-otp` with it and your bearer token. An unconfirmed claim never blocks the "
        "number's owner; whoever verifies it first keeps it."))
    password: str = Field(min_length=1, max_length=128, description="At least 10 characters, not a common password")
    name: PersonName

    @model_validator(mode="after")
    def _one_identifier(self) -> RegisterRequest:
        if not (self.email or self.phone):
            raise ValueError("email or phone is required")
        return self


class RegisterResponse(Out):
    id: str
    email: str | None
    phone: str | None
    role: Literal["customer"] = "customer"
    status: str = Field(examples=["pending_verification"])
    message: str


class VerifyOtpRequest(Input):
    model_config = ConfigDict(json_schema_extra={"example": {"identifier": "asha@example.com", "otp": "123456"}})

    identifier: str = Identifier
    otp: str = OtpCode


class VerifyOtpResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": {"message": "Account verified. You can sign in now.", "user_id": "6741f0c2a1b2c3d4e5f60718"}})

    message: str
    user_id: str


class IdentifierRequest(Input):
    identifier: str = Identifier


class LoginRequest(Input):
    model_config = ConfigDict(json_schema_extra={"example": {"identifier": "asha@example.com", "password": "correct-horse-battery"}})

    identifier: str = Identifier
    password: str = Password


class TokenPairResponse(Out):
    model_config = ConfigDict(json_schema_extra={"example": {
        "access_token": "eyJhbGciOiJIUzI1NiIs...", "refresh_token": "eyJhbGciOiJIUzI1NiIs...",
        "token_type": "bearer", "expires_in": 900, "user_id": "6741f0c2a1b2c3d4e5f60718", "role": "customer"}})

    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Access token lifetime in seconds")
    user_id: str
    role: str


class MfaRequiredResponse(Out):
    model_config = ConfigDict(json_schema_extra={"example": {"mfa_required": True, "otp_token": "Yq0mB1v3...",
                                          "message": "Enter the code we sent to finish signing in."}})

    mfa_required: Literal[True] = True
    otp_token: str = Field(description="Send it back with the code to /auth/login/verify-otp")
    message: str


class OtpTokenResponse(Out):
    model_config = ConfigDict(json_schema_extra={"example": {"otp_token": "Yq0mB1v3...", "message": "If the account exists, we sent a sign-in code."}})

    otp_token: str
    message: str


class LoginVerifyRequest(Input):
    otp_token: str = Field(min_length=10, max_length=200)
    otp: str = OtpCode


class RefreshRequest(Input):
    model_config = ConfigDict(json_schema_extra={"example": {"refresh_token": "eyJhbGciOiJIUzI1NiIs..."}})

    refresh_token: str = Field(min_length=10, max_length=4096)


class LogoutRequest(Input):
    refresh_token: str | None = Field(None, max_length=4096)


class VerifyTokenResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"example": {"valid": True, "user_id": "6741f0c2a1b2c3d4e5f60718", "role": "customer",
                                          "expires_at": "2026-11-22T10:15:00.000Z"}})

    valid: Literal[True] = True
    user_id: str
    role: str
    expires_at: UtcDatetime


class ChangePasswordRequest(Input):
    current_password: str = Password
    new_password: str = Password


class ResetPasswordRequest(Input):
    identifier: str = Identifier
    otp: str = OtpCode
    new_password: str = Password
