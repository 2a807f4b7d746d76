"""The rule pipelines' calibration: the shipped file loads and is monotone in every score, the
expected calibration error on a hand-checked example, fitting, and which curve applies."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core import rule_calibration as rc
from core.settings import MatchSettings
from core.store import Store
from core.verdict_words import FROM_CALIBRATED, pair_probability


@pytest.mark.parametrize("pipeline", rc.RULE_PIPELINES)
def test_shipped_curve_loads_and_rises(pipeline: str) -> None:
    curve = rc.default_calibrations()[pipeline]
    assert curve.pipeline == pipeline and curve.method in rc.METHODS
    assert curve.pairs > 100_000 and curve.same > 10_000  # the Shopee selection part
    assert "selection part" in curve.fitted_on
    z = np.linspace(0.0, 1.0, 1001)
    p = curve.probability(z)
    assert (np.diff(p) >= 0).all() and p.min() >= 0.0 and p.max() <= 1.0
    assert p[0] < 0.05 and p[-1] > 0.9  # unlike pairs read Different, identical ones Same
    assert np.isnan(curve.probability(np.array([np.nan]))[0])


def test_shipped_file_is_plain_json_numbers() -> None:
    payload = json.loads(rc.DEFAULT_FILE.read_text(encoding="utf-8"))
    assert set(payload["pipelines"]) == set(rc.RULE_PIPELINES)
    assert rc.DEFAULT_FILE.stat().st_size < 50_000
    for values in payload["pipelines"].values():
        assert all(isinstance(v, float | int) for v in values["x"] + values["y"])


@pytest.mark.parametrize(
    ("pipeline", "title", "alike"),
    [("baseline", "tfidf_cosine", 1.0), ("ensemble", "text_ratio", 1.0)],
)
def test_probability_rises_with_every_score(pipeline: str, title: str, alike: float) -> None:
    curve = rc.default_calibrations()[pipeline]
    titles = np.linspace(0.0, 1.0, 101)
    for bits in (0.0, 6.0, 20.0):
        frame = pd.DataFrame({title: titles, "hash_distance": bits})
        p = curve.apply(frame, MatchSettings())
        assert (np.diff(p) >= -1e-12).all()
    closer = pd.DataFrame({title: 0.3, "hash_distance": np.arange(0.0, 65.0)})
    assert (np.diff(curve.apply(closer, MatchSettings())) <= 1e-12).all()


def test_a_threshold_moved_in_settings_changes_no_probability() -> None:
    curve = rc.default_calibrations()["baseline"]
    frame = pd.DataFrame({"tfidf_cosine": [0.45, 0.6, 0.9], "hash_distance": 30.0})
    moved = MatchSettings(baseline_text_cosine=0.3, hash_max_distance=12)
    assert np.allclose(curve.apply(frame, moved), curve.apply(frame, MatchSettings()))


def test_expected_calibration_error_by_hand() -> None:
    p = np.array([0.05, 0.15, 0.15, 0.95, 0.95, 0.95, 1.0, np.nan])
    same = np.array([0, 0, 1, 1, 1, 1, 0, 1])
    table = rc.reliability_table(p, same)
    # bin 0.0-0.1: one pair, 0.05 predicted, none same; bin 0.1-0.2: two pairs, 0.15, half
    # same; bin 0.9-1.0 (1.0 falls in it): four pairs, 0.9625 predicted, three same; the NaN
    # pair has no probability and is left out.
    assert table["pairs"].tolist() == [1, 2, 0, 0, 0, 0, 0, 0, 0, 4]
    assert table.loc[9, "mean_predicted"] == pytest.approx(0.9625)
    assert table.loc[9, "observed_same"] == pytest.approx(0.75)
    assert table.loc[0, "bin"] == "0.0–0.1"
    expected = (1 * 0.05 + 2 * abs(0.15 - 0.5) + 4 * abs(0.9625 - 0.75)) / 7
    assert rc.expected_calibration_error(p, same) == pytest.approx(expected)
    assert rc.expected_calibration_error(np.array([0.3, 0.3]), np.array([0, 1])) == (
        pytest.approx(0.2)
    )


def test_fitted_curves_are_monotone_and_refuse_otherwise() -> None:
    rng = np.random.default_rng(0)
    z = rng.uniform(0.05, 0.99, 4000)
    same = rng.uniform(size=4000) < z**2
    for method in rc.METHODS:
        curve = rc.fit("baseline", z, same, method)
        p = curve.probability(np.linspace(0, 1, 101))
        assert (np.diff(p) >= -1e-12).all()
        assert rc.Calibration.from_dict(json.loads(json.dumps(curve.to_dict()))) == curve
        assert rc.expected_calibration_error(curve.probability(z), same) < 0.05
    with pytest.raises(ValueError, match="rise"):
        rc.Calibration.from_dict({"pipeline": "x", "method": "isotonic", "x": [0, 1], "y": [1, 0]})
    with pytest.raises(ValueError, match="method"):
        rc.Calibration.from_dict({"pipeline": "x", "method": "guess"})


def test_a_catalogs_own_curve_wins_while_its_postings_stay(tmp_path) -> None:
    own = rc.Calibration("baseline", "isotonic", x=(0.0, 1.0), y=(0.2, 0.3))
    with Store(tmp_path / "c.db") as store:
        assert rc.calibration_for(store, "baseline") == rc.default_calibrations()["baseline"]
        entry = {**own.to_dict(), "catalog_revision": store.catalog_revision}
        store.set_setting(rc.STORE_KEY, {"baseline": entry})
        assert rc.calibration_for(store, "baseline") == own
        store.set_setting(rc.STORE_KEY, {"baseline": {**entry, "catalog_revision": -1}})
        assert rc.calibration_for(store, "baseline") == rc.default_calibrations()["baseline"]
    assert rc.calibration_for(None, "best") is None


def test_pair_probability_says_it_is_calibrated() -> None:
    frame = pd.DataFrame({"tfidf_cosine": [0.9, 0.2], "hash_distance": [40.0, 40.0]})
    curve = rc.default_calibrations()["baseline"]
    p, source = pair_probability(frame, MatchSettings(), calibration=curve)
    assert set(source) == {FROM_CALIBRATED} and p[0] > p[1]


def test_a_labelled_catalog_gets_its_own_curve(demo_store: Store) -> None:
    curve = rc.refit_on_catalog(demo_store, "baseline")
    assert curve.method == "isotonic" and curve.pairs > 1000 and curve.same > 100
    assert "this catalog's labels" in curve.fitted_on
    assert rc.calibration_for(demo_store, "baseline") == curve
    assert rc.calibration_for(demo_store, "ensemble") == rc.default_calibrations()["ensemble"]
    p = curve.probability(np.linspace(0, 1, 101))
    assert (np.diff(p) >= 0).all()
    with pytest.raises(Exception, match="own probability"):
        rc.refit_on_catalog(demo_store, "best")
