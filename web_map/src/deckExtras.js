// deck.gl layers the first view does not draw, with their loaders: deck's own vector tile layer
// (?renderer=deck), the H3 hexagons and the heatmap, raster tiles and the 3D terrain. They come in
// a chunk of their own the first time one is needed (lazyDeck.js), not with the map.

export { H3HexagonLayer, MVTLayer, TerrainLayer, TileLayer } from '@deck.gl/geo-layers';
export { HeatmapLayer } from '@deck.gl/aggregation-layers';
export { load } from '@loaders.gl/core';
export { MVTLoader } from '@loaders.gl/mvt';
export { TerrainLoader } from '@loaders.gl/terrain';
export { latLngToCell } from 'h3-js';
