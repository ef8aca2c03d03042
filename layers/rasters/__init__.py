"""Raster layers (issue 20): catalogue rows and COG paths (store), tile rendering (tiles)."""
