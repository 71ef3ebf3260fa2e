"""Authentication (API tokens, service account tokens) and Unleash's permission model."""
