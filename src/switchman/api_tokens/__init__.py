"""Admin API tokens: `/api/admin/api-tokens` (Unleash-compatible)."""
