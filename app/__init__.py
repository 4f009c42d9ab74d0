"""The civicrisk service: one package per domain (scoring, hospitals, inspections) and their platform."""
