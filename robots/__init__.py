"""Robot descriptions and constants (Go1 first; one YAML per robot under ``robots/<name>/``)."""
