"""The audit trail: human-readable summaries now; projector and queries build on them."""
