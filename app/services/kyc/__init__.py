"""KYC cases by concern, one service each on the same repositories: the customer's case
(`case.KycCaseService`: uploads, corrections, submission), the automated checks
(`checks.KycChecksService`: the durable job) and the auditor's review (`review.KycReviewService`).
Callers import the one they use from its module."""
