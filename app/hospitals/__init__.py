"""Hospitals: the lead-risk engine behind the Lead Safe contract and CDS Hooks (FHIR)."""
