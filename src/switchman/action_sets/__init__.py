"""Action sets, their actions, and action set events."""
