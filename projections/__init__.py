"""Read models: tables other apps may query, kept current exactly once per event."""
