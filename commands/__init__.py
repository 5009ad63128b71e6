"""Click command groups: each parses, calls the Ledger, renders. No logic of their own."""
