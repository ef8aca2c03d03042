// Small planar-on-the-sphere helpers for the browser: camera cones, circles, point-in-polygon,
// distances. Good enough at provincial scale (errors well under a metre per kilometre).

const R = 6371008.8;
const RAD = Math.PI / 180;

/** Offset a lon/lat by a distance (m) along a bearing (degrees clockwise from north). */
export function destination([lon, lat], bearingDeg, distM) {
  const b = bearingDeg * RAD;
  const dLat = (distM * Math.cos(b)) / R;
  const dLon = (distM * Math.sin(b)) / (R * Math.cos(lat * RAD));
  return [lon + dLon / RAD, lat + dLat / RAD];
}

/** A camera's view cone as a closed ring: apex at the camera, arc at range_m. */
export function viewCone(coord, headingDeg, fovDeg, rangeM, steps = 16) {
  const ring = [coord];
  const half = (fovDeg || 60) / 2;
  for (let i = 0; i <= steps; i++) {
    const b = (headingDeg || 0) - half + ((2 * half) * i) / steps;
    ring.push(destination(coord, b, rangeM || 80));
  }
  ring.push(coord);
  return ring;
}

/** A circle as a closed ring of lon/lat points. */
export function circleRing(center, radiusM, steps = 64) {
  const ring = [];
  for (let i = 0; i <= steps; i++) ring.push(destination(center, (360 * i) / steps, radiusM));
  return ring;
}

/** Great-circle distance in metres. */
export function distanceM([lon1, lat1], [lon2, lat2]) {
  const dLat = (lat2 - lat1) * RAD;
  const dLon = (lon2 - lon1) * RAD;
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * RAD) * Math.cos(lat2 * RAD) * Math.sin(dLon / 2) ** 2;
  return 2 * R * Math.asin(Math.min(1, Math.sqrt(a)));
}

/** Ray-casting test of a point in one ring. */
function inRing([x, y], ring) {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i];
    const [xj, yj] = ring[j];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** Point in a GeoJSON Polygon or MultiPolygon geometry (holes respected). */
export function pointInGeometry(pt, geom) {
  if (!geom) return false;
  const polys = geom.type === 'Polygon' ? [geom.coordinates] : geom.type === 'MultiPolygon' ? geom.coordinates : [];
  for (const poly of polys) {
    if (poly.length && inRing(pt, poly[0]) && !poly.slice(1).some((h) => inRing(pt, h))) return true;
  }
  return false;
}

/** A representative point of any geometry (the point itself, or the mean of the outer ring). */
export function representativePoint(geom) {
  if (!geom) return null;
  switch (geom.type) {
    case 'Point':
      return geom.coordinates;
    case 'MultiPoint':
    case 'LineString':
      return geom.coordinates[0];
    case 'Polygon':
      return ringCentroid(geom.coordinates[0]);
    case 'MultiPolygon': {
      let best = null;
      let bestN = -1;
      for (const p of geom.coordinates) {
        if (p[0].length > bestN) {
          bestN = p[0].length;
          best = p[0];
        }
      }
      return best ? ringCentroid(best) : null;
    }
    default:
      return null;
  }
}

function ringCentroid(ring) {
  let x = 0;
  let y = 0;
  const n = Math.max(ring.length - 1, 1);
  for (let i = 0; i < n; i++) {
    x += ring[i][0];
    y += ring[i][1];
  }
  return [x / n, y / n];
}

/** Bounding box [minx,miny,maxx,maxy] of a geometry. */
export function geometryBBox(geom) {
  let minx = Infinity;
  let miny = Infinity;
  let maxx = -Infinity;
  let maxy = -Infinity;
  const walk = (c) => {
    if (typeof c[0] === 'number') {
      if (c[0] < minx) minx = c[0];
      if (c[0] > maxx) maxx = c[0];
      if (c[1] < miny) miny = c[1];
      if (c[1] > maxy) maxy = c[1];
    } else for (const s of c) walk(s);
  };
  if (geom && geom.coordinates) walk(geom.coordinates);
  return [minx, miny, maxx, maxy];
}
