"""Inspections: the daily ranked list, issued lists, recorded outcomes and the inspectors' page."""
