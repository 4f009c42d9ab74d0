"""The `civicrisk` command: drives the training pipeline (training/) and the service (app/)."""
