from tests.action_sets.helpers import editor, world

__all__ = ["editor", "world"]
