"""Credentials the service verifies: EHR tokens (CDS Hooks)."""
