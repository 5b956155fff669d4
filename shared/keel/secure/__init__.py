"""Who may talk to the distributed stack: credentials (where they are found, how each client
uses them) and the access table (which principal may do what). The embedded default needs none
of it: with no credentials found for an address, clients connect as before."""
