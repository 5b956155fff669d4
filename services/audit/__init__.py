"""audit: the audit questions as a JSON API over the read model."""
