"""Features and tiles: the layer registry, the partitioned feature table, queries, OGC API, vector and raster tiles, admin units and place names."""
