"""Trend and short forecast of a KPI time series, with a prediction band."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import statsmodels.api as sm
from numpy.typing import NDArray

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class Forecast:
    """Fitted trend over the history and the next `horizon` steps with a confidence band."""

    slope: float
    slope_p: float
    fitted: F64
    mean: F64
    lower: F64
    upper: F64
    level: float


def linear_forecast(y: F64, horizon: int = 4, level: float = 0.95) -> Forecast:
    """OLS linear trend on a regular series and its forecast with a prediction interval.

    A straight trend suits the short, noisy weekly KPI series leaders look at; the band is
    the OLS prediction interval, so it widens with distance from the data.
    """
    y = np.asarray(y, dtype=np.float64)
    n = len(y)
    if n < 3:
        raise ValueError("need at least 3 points for a trend")
    t = np.arange(n, dtype=np.float64)
    model = sm.OLS(y, sm.add_constant(t)).fit()
    tf = np.arange(n, n + horizon, dtype=np.float64)
    pred = model.get_prediction(sm.add_constant(tf, has_constant="add"))
    frame = pred.summary_frame(alpha=1.0 - level)
    return Forecast(
        slope=float(model.params[1]),
        slope_p=float(model.pvalues[1]) if np.isfinite(model.pvalues[1]) else 1.0,
        fitted=np.asarray(model.fittedvalues, dtype=np.float64),
        mean=np.asarray(frame["mean"], dtype=np.float64),
        lower=np.asarray(frame["obs_ci_lower"], dtype=np.float64),
        upper=np.asarray(frame["obs_ci_upper"], dtype=np.float64),
        level=level,
    )
