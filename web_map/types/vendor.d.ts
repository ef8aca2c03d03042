// deck.gl and maplibre-gl are checked loosely (every import is `any`): their props are typed
// with string-literal unions ('pixels', style version 8) that the plain-object styles built
// in our modules widen to `string`. Our own modules, h3-js and loaders.gl keep their real
// types. The private internals the map relies on are checked at run time instead
// (src/internals.js and tests/internals.test.mjs).
declare module "@deck.gl/core";
declare module "@deck.gl/layers";
declare module "@deck.gl/geo-layers";
declare module "@deck.gl/aggregation-layers";
declare module "@deck.gl/extensions";
declare module "@deck.gl/mapbox";
declare module "@deck.gl/mesh-layers";
declare module "maplibre-gl";
