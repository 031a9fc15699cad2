"""Offline tooling shipped with the service but never imported by it: `kycflow eval` (model accuracy on labelled data)."""
