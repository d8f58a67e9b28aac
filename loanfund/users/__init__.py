"""People who sign in to the dashboard: fund managers and auditors, with a password and a session."""
