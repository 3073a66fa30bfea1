"""The demo catalog: a Django-shaped `music` app seeded from real metadata (see data/SOURCES.md)."""
