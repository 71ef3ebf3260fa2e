from tests.service_accounts.helpers import editor, viewer

__all__ = ["editor", "viewer"]
