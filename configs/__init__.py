"""Presets (``configs/<kind>/<name>.yaml``, shipped as package data) and the typed loader that reads them."""
