"""Our Gi* against the reference implementation, esda.G_Local(star=True), on the same weights."""

from __future__ import annotations

import h3
import numpy as np
import pytest

from analytics import hotspots

esda = pytest.importorskip("esda")
libpysal = pytest.importorskip("libpysal")


def _esda_z(study: np.ndarray, x: np.ndarray, k: int) -> np.ndarray:
    owner, other = hotspots.ring_neighbours(study, k)
    neighbours: dict[int, list[int]] = {i: [] for i in range(len(study))}
    for i, j in zip(owner.tolist(), other.tolist(), strict=True):
        if i != j:  # esda adds the cell itself (weight 1) because star=True
            neighbours[i].append(j)
    w = libpysal.weights.W(neighbours, silence_warnings=True)
    g = esda.G_Local(x, w, transform="B", star=True, permutations=0)
    return np.asarray(g.Zs, dtype=np.float64)


@pytest.mark.parametrize(("k", "fill"), [(1, False), (1, True), (2, True)])
def test_gi_star_equals_esda(k: int, fill: bool) -> None:
    """z-scores agree within 1e-9 on a clustered, skewed sample over real H3 cells."""
    rng = np.random.default_rng(7)
    centre = h3.latlng_to_cell(18.8, 105.3, 8)
    disk = [h3.str_to_int(c) for c in h3.grid_disk(centre, 25)]
    cells = np.array(sorted(rng.choice(disk, size=len(disk) // 2, replace=False)), np.uint64)
    values = rng.poisson(2, len(cells)).astype(np.float64)
    values[:40] += 25  # a planted cluster near one edge of the sorted ids
    ours = hotspots.gi_star(cells, values, k=k, fill_neighbors=fill)
    theirs = _esda_z(ours.cell, ours.value, k)
    assert np.max(np.abs(ours.z - theirs)) < 1e-9
    assert (ours.spot != 0).any()
