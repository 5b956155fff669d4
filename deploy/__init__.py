"""How the real components start: the local launcher for Kafka (KRaft), Redis and SeaweedFS."""
