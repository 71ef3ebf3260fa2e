"""The embedded flag store (projects, environments, features, tags, audit events) and flag backends."""
