"""The serve service: predictions behind a contract-checked HTTP boundary."""
