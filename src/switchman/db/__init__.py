"""Storage: table metadata, engine construction, migrations runner."""
