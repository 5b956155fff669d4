"""The quarterly review pack: `keel audit report` (decision 0016)."""
