"""Service accounts: the actors action sets run as."""
