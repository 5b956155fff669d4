"""Tools for people outside the team (auditors): each imports nothing from Keel."""
