"""The audit log (Unleash's `events`) and the revision of what SDK clients see, which moves with it."""
