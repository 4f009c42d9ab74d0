"""civicrisk training pipeline: one sub-package per task (inspections, lead), the stages they share
(config reading, points in time, evaluation, tiers, bundles, cards, signing) as public modules, and
`serving`, the one module the service (app/) may import."""
