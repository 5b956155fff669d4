"""The composition root: which handlers each service runs, and the commands that span services."""
