"""leadledger: an event-sourced ownership ledger for a shared lead pool (公海)."""
