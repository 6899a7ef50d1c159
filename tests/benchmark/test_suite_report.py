"""Suite reports: mPC / rPC / mCE arithmetic, tables with missing severities, baselines, recompute."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keypoint_corrupt.benchmark import (
    BaselineMismatchError,
    RowResult,
    corruption_errors,
    evaluate,
    load_baseline,
    mce_from_reports,
    mean_performance,
    recompute,
    suite_section,
    write_report,
)
from keypoint_corrupt.benchmark.suite_report import (
    baseline_block,
    check_baseline,
    relative_performance,
    suite_header,
    suite_markdown,
)
from keypoint_corrupt.metrics import PCK_THRESHOLDS, keypoint_metrics
from keypoint_corrupt.suites import get_suite, register_suite, unregister_suite

# --------------------------------------------------------------------------------------------
# The formulas, on tables worked out by hand.


def test_mpc_weighs_each_corruption_once_over_the_severities_it_has():
    cells = {"blur": {1: 0.9, 2: 0.7, 3: 0.5}, "noise": {1: 0.6}}
    # blur's mean is (0.9 + 0.7 + 0.5) / 3 = 0.7, noise's 0.6; mPC = (0.7 + 0.6) / 2 = 0.65
    assert mean_performance(cells) == pytest.approx(0.65, abs=1e-15)
    # ... not the plain mean of the four cells (2.7 / 4 = 0.675)
    assert mean_performance(cells) != pytest.approx(0.675)
    assert relative_performance(0.65, 0.8) == pytest.approx(0.8125, abs=1e-15)
    # an error metric: rPC = clean / mPC (share kept); 4 px clean, 10 px corrupted -> 0.4
    assert relative_performance(10.0, 4.0, higher_is_better=False) == pytest.approx(0.4)


def test_mpc_leaves_out_missing_and_nan_cells():
    assert mean_performance({"a": {1: 0.2, 2: math.nan, 3: 0.4}, "b": {1: None}}) == pytest.approx(0.3)
    assert math.isnan(mean_performance({"a": {1: None}}))
    assert math.isnan(relative_performance(0.5, 0.0))


def test_mce_and_relative_mce_by_hand():
    model = {"a": {1: 0.8, 2: 0.6}, "b": {1: 0.5, 2: 0.3}}
    base = {"a": {"1": 0.7, "2": 0.5}, "b": {"1": 0.6, "2": 0.2}}  # JSON's string keys
    e = corruption_errors(model, base, clean=0.9, baseline_clean=0.8)
    # errors 1 - P: a: (0.2 + 0.4) / (0.3 + 0.5) = 0.75; b: (0.5 + 0.7) / (0.4 + 0.8) = 1
    assert e.ce == pytest.approx({"a": 0.75, "b": 1.0})
    assert e.mce == pytest.approx(0.875)
    # minus the clean errors (0.1 and 0.2): a: (0.1 + 0.3) / (0.1 + 0.3) = 1; b: (0.4 + 0.6) / (0.2 + 0.6)
    assert e.relative_ce == pytest.approx({"a": 1.0, "b": 1.25})
    assert e.relative_mce == pytest.approx(1.125)
    assert e.reasons == {}


def test_mce_is_undefined_where_a_cell_or_the_baseline_error_is_missing():
    e = corruption_errors({"a": {1: 0.5}, "b": {1: None}}, {"a": {1: 1.0}, "b": {1: 0.5}}, 0.9, 1.0)
    assert math.isnan(e.ce["a"]) and "the baseline has no error under it" in e.reasons["CE.a"]
    assert math.isnan(e.ce["b"]) and "severity 1" in e.reasons["CE.b"]
    assert math.isnan(e.mce) and "a, b" in e.reasons["mCE"]
    e = corruption_errors({"a": {1: 0.5}}, {"a": {1: 0.5}})  # no clean figures: only the relative form lacks
    assert e.mce == 1.0 and math.isnan(e.relative_mce) and "clean" in e.reasons["relative_CE.a"]
    e = corruption_errors({"a": {1: 0.5}}, {"a": {1: 0.8}}, clean=0.9, baseline_clean=0.8)
    assert e.ce["a"] == pytest.approx(2.5) and math.isnan(e.relative_ce["a"])  # 0.5 / 0.2; 0.4 / 0
    assert "the baseline lost nothing" in e.reasons["relative_CE.a"]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.lists(st.floats(0.0, 0.99, allow_nan=False), min_size=5, max_size=5), min_size=1, max_size=6),
)
def test_full_table_mpc_is_the_mean_and_a_model_is_its_own_baseline(table):
    grid = np.array(table)
    cells = {f"c{i}": {s + 1: v for s, v in enumerate(row)} for i, row in enumerate(table)}
    assert mean_performance(cells) == pytest.approx(float(grid.mean()), abs=1e-12)
    e = corruption_errors(cells, cells, clean=1.0, baseline_clean=1.0)
    assert e.mce == pytest.approx(1.0) and all(v == pytest.approx(1.0) for v in e.ce.values())


# --------------------------------------------------------------------------------------------
# Suite sections from rows.


def _rows(configs, preds_for):
    """Hand-made rows: 2 images x 3 joints; ``preds_for(name)`` gives the predictions."""
    gt = np.array([[[10.0, 10.0], [20.0, 20.0], [30.0, 30.0]]] * 2)
    vis = np.ones((2, 3), bool)
    out = {}
    for name in ("standard", *configs):
        pred = preds_for(name, gt)
        out[name] = RowResult(name, name, keypoint_metrics(pred, gt, vis), ["x", "y"], pred, gt, vis)
    return out


@pytest.fixture
def tiny_suite():
    suite = register_suite(
        "kc-test-table",
        {"defocus": ["defocus-7", "defocus-13"], "noise": ["noise-gaussian"]},
        description="two corruptions",
        protocol="a test protocol",
    )
    yield suite
    unregister_suite("kc-test-table")


def test_section_tables_missing_severities_and_nan_reasons(tiny_suite):
    offsets = {"standard": 1.0, "defocus-7": 4.0, "defocus-13": math.nan, "noise-gaussian": 12.0}

    def preds_for(name, gt):
        return gt + offsets[name]  # defocus-13: nothing found at all

    rows = _rows(tiny_suite.configs(), preds_for)
    sec = json.loads(json.dumps(_json(suite_section(tiny_suite, rows))))  # as report.json stores it
    assert sec["severities"] == [1, 2] and sec["not_in_suite"] == {"noise": [2]}
    assert sec["table"] == {
        "defocus": {"1": "defocus-7", "2": "defocus-13"},
        "noise": {"1": "noise-gaussian"},
    }
    auc, epe = sec["metrics"]["auc"], sec["metrics"]["mean_epe"]
    # every joint is off by sqrt(2) * offset px: PCK(t) is the step (e <= t), AUC its trapezoid / 30
    t = PCK_THRESHOLDS
    expect = {
        name: float(np.trapezoid((math.sqrt(2) * d <= t).astype(float), t) / 30)
        for name, d in offsets.items()
        if not math.isnan(d)
    }
    assert auc["clean"] == pytest.approx(expect["standard"], abs=1e-12)
    assert auc["cells"]["defocus"]["1"] == pytest.approx(expect["defocus-7"], abs=1e-12)
    assert auc["cells"]["defocus"]["2"] == 0.0  # misses are wrong at every threshold
    mpc = ((expect["defocus-7"] + 0.0) / 2 + expect["noise-gaussian"]) / 2
    assert auc["mPC"] == pytest.approx(mpc, abs=1e-12)
    assert auc["rPC"] == pytest.approx(mpc / expect["standard"], abs=1e-12)
    assert auc["by_severity"] == pytest.approx(
        {"1": (expect["defocus-7"] + expect["noise-gaussian"]) / 2, "2": 0.0}
    )
    # the EPE of defocus-13 does not exist: null, with its reason, and left out of the means
    assert epe["cells"]["defocus"]["2"] is None
    assert epe["reasons"]["cells.defocus.2"] == "0 of 6 visible joints found"
    assert epe["excluded"] == ["defocus 2"] and epe["cells_used"] == 2
    assert epe["mPC"] == pytest.approx((4 + 12) * math.sqrt(2) / 2)
    assert epe["rPC"] == pytest.approx(epe["clean"] / epe["mPC"])
    assert epe["by_severity"]["2"] is None and "by_severity.2" in epe["reasons"]
    assert _unexplained_nulls(sec) == []


def test_a_corruption_without_a_cell_at_these_severities_is_left_out(tiny_suite):
    # severity 2: defocus has it (defocus-13), noise does not (one level only)
    def offsets(d):
        return lambda name, gt: gt + d[name]

    mine = _rows(["defocus-13"], offsets({"standard": 1.0, "defocus-13": 6.0}))
    base = _rows(["defocus-13"], offsets({"standard": 1.0, "defocus-13": 3.0}))
    sec, base_sec = (_json(suite_section(tiny_suite, rows, [2])) for rows in (mine, base))
    assert sec["left_out"] == ["noise"] and sec["not_in_suite"] == {"noise": [2]}
    for block in sec["metrics"].values():
        assert list(block["cells"]) == list(block["by_corruption"]) == ["defocus"]
        assert block["mPC"] == block["cells"]["defocus"]["2"] and "noise" not in str(block["reasons"])
    # mCE over the corruptions that have cells: defocus's CE, the errors 1 - AUC by hand
    t = PCK_THRESHOLDS

    def auc(d):
        return float(np.trapezoid((math.sqrt(2) * d <= t).astype(float), t) / 30)

    b = baseline_block(sec, {"label": "base", "suite": base_sec})
    assert list(b["CE"]) == ["defocus"] and b["reasons"] == {}
    assert b["mCE"] == pytest.approx((1 - auc(6.0)) / (1 - auc(3.0)), abs=1e-12)
    assert b["relative_mCE"] == pytest.approx((auc(1.0) - auc(6.0)) / (auc(1.0) - auc(3.0)), abs=1e-12)
    assert "over the corruptions the suite defines at one or more" in sec["definitions"]["mCE"]
    sec["baseline"] = b
    md = "\n".join(suite_markdown([("mine", sec)], {"fraction": 1.0, "seed": 0}))
    assert "- not in the suite at severities 2, so left out of the tables, mPC and mCE: noise" in md
    assert "| defocus |" in md and "| noise |" not in md
    # a section of an older report (the empty row kept) gives the same mCE
    old = json.loads(json.dumps(sec))
    old["metrics"]["auc"]["cells"]["noise"] = {}
    assert baseline_block(old, {"label": "base", "suite": base_sec})["mCE"] == b["mCE"]


def test_rpc_reason_names_the_divisor_that_is_0(tiny_suite):
    # clean: every joint off by 100 px (AUC 0); cells: exact (AUC 1, EPE 0)
    def preds_for(name, gt):
        return gt + (100.0 if name == "standard" else 0.0)

    sec = _json(suite_section(tiny_suite, _rows(tiny_suite.configs(), preds_for)))
    auc, epe = sec["metrics"]["auc"], sec["metrics"]["mean_epe"]
    assert auc["clean"] == 0.0 and auc["mPC"] == 1.0 and auc["rPC"] is None
    assert auc["reasons"]["rPC"] == "P_clean is 0 (rPC = mPC / P_clean)"
    assert epe["mPC"] == 0.0 and epe["rPC"] is None
    assert epe["reasons"]["rPC"] == "mPC is 0 (rPC = P_clean / mPC)"


def _json(obj):
    from keypoint_corrupt.benchmark.report import json_safe

    return json_safe(obj)


def _unexplained_nulls(sec):
    """Every ``null`` of a section's metric tables that no ``reasons`` entry explains."""
    lost = []
    for metric, block in sec["metrics"].items():
        why = block["reasons"]
        for c, row in block["cells"].items():
            lost += [
                f"{metric}.cells.{c}.{s}" for s, v in row.items() if v is None and f"cells.{c}.{s}" not in why
            ]
        for key in ("by_corruption", "by_severity"):
            lost += [
                f"{metric}.{key}.{k}" for k, v in block[key].items() if v is None and f"{key}.{k}" not in why
            ]
        lost += [f"{metric}.{k}" for k in ("clean", "mPC", "rPC") if block[k] is None and k not in why]
    return lost


def test_section_needs_every_row_and_a_valid_severity(tiny_suite):
    rows = _rows(["defocus-7"], lambda name, gt: gt)
    with pytest.raises(ValueError, match="no row for defocus-13, noise-gaussian of suite 'kc-test-table'"):
        suite_section(tiny_suite, rows)
    with pytest.raises(ValueError, match=r"severities of suite 'kc-test-table' are 1..2, got \[3\]"):
        suite_section(tiny_suite, rows, [3])
    assert suite_section(tiny_suite, _rows(["defocus-7", "noise-gaussian"], lambda n, gt: gt), [1])


def test_baseline_checks_name_every_difference():
    a = suite_header("costa2021", [1, 2], PCK_THRESHOLDS)
    with pytest.raises(BaselineMismatchError, match=r"^severities: \[1, 2\], baseline \[1, 2, 3\]$"):
        check_baseline(a, suite_header("costa2021", [1, 2, 3], PCK_THRESHOLDS))
    with pytest.raises(BaselineMismatchError, match=r"thresholds: .*'to': 30.0.*'to': 20.0"):
        check_baseline(a, suite_header("costa2021", [1, 2], np.linspace(0, 20, 20)))
    with pytest.raises(BaselineMismatchError, match="data seed: 0, baseline 1"):
        check_baseline(a, a, {"seed": 0, "root": "/a"}, {"seed": 1, "root": "/b"})
    check_baseline(a, a, {"seed": 0, "root": "/a"}, {"seed": 0, "root": "/elsewhere"})  # roots may differ
    other = register_suite("kc-test-other", {"defocus": ["defocus-7"]})
    try:
        with pytest.raises(BaselineMismatchError, match="suite: costa2021, baseline kc-test-other"):
            check_baseline(
                suite_header("costa2021", [1], PCK_THRESHOLDS), suite_header(other, [1], PCK_THRESHOLDS)
            )
    finally:
        unregister_suite("kc-test-other")


# --------------------------------------------------------------------------------------------
# Reports on the bundled sample.


def _shifted(dx):
    def predict(images, crops):
        # a content-dependent answer, so that corruptions change it
        bright = np.array([float(np.mean(im)) for im in images]) / 25.0
        return np.repeat(crops.center[:, None], 21, 1) + dx + bright[:, None, None]

    return predict


@pytest.fixture(scope="module")
def costa_reports(val, tmp_path_factory):
    """Two models on costa2021 severities 1-2 (fraction 0.5): the baseline, and one scored against it."""
    suite = get_suite("costa2021")
    configs = suite.configs([1, 2])
    root = tmp_path_factory.mktemp("suite")
    base = evaluate(_shifted(2.0), val, configs, fraction=0.5, examples=0)
    write_report(base, root / "base", label="base", suite=suite, severities=[1, 2], plots=False)
    mine = evaluate(_shifted(5.0), val, configs, fraction=0.5, examples=0)
    write_report(
        mine, root / "mine", label="mine", suite="costa2021", severities=[1, 2], baseline=root / "base"
    )
    return root


def test_costa2021_report_tables_mce_and_protocol(costa_reports):
    doc = json.loads((costa_reports / "mine" / "report.json").read_text())
    base = json.loads((costa_reports / "base" / "report.json").read_text())
    sec = doc["suite"]
    rows = {r["name"]: r for r in doc["rows"]}
    auc = sec["metrics"]["auc"]
    # every cell is its configuration's row; the single-level noises have severity 1 only
    for c, levels in sec["table"].items():
        for s, cfg in levels.items():
            assert auc["cells"][c][s] == rows[cfg]["auc"]
    assert list(auc["cells"]["noise-gaussian"]) == ["1"] and sec["not_in_suite"]["noise-saltpepper"] == [2]
    means = [np.mean([rows[cfg]["auc"] for cfg in levels.values()]) for levels in sec["table"].values()]
    assert auc["mPC"] == pytest.approx(np.mean(means), abs=1e-12)
    assert auc["rPC"] == pytest.approx(auc["mPC"] / rows["standard"]["auc"], abs=1e-12)
    # mCE from the two reports' rows, independently of the suite code
    brows = {r["name"]: r for r in base["rows"]}
    ce = [
        sum(1 - rows[cfg]["auc"] for cfg in lv.values()) / sum(1 - brows[cfg]["auc"] for cfg in lv.values())
        for lv in sec["table"].values()
    ]
    rel = [
        sum(rows["standard"]["auc"] - rows[cfg]["auc"] for cfg in lv.values())
        / sum(brows["standard"]["auc"] - brows[cfg]["auc"] for cfg in lv.values())
        for lv in sec["table"].values()
    ]
    b = sec["baseline"]
    assert b["label"] == "base" and b["report"].endswith("base/report.json")
    assert b["mCE"] == pytest.approx(np.mean(ce), abs=1e-12)
    assert b["relative_mCE"] == pytest.approx(np.mean(rel), rel=1e-9)
    assert sec["data"]["clean"]["annotations"] == 8 and sec["data"]["cells"]["motion-30"]["annotations"] == 4
    md = (costa_reports / "mine" / "report.md").read_text()
    for text in (
        "## Suite `costa2021`: performance by corruption and severity",
        "- protocol: Costa et al.: 20% corrupted subsets of STB",
        "AUC of the PCK curve over 20 thresholds from 0 to 30 px",
        "- misses: a joint the model does not find (NaN prediction) is a miss",
        "not in the suite (shown as `·`, left out of every mean): noise-gaussian: 2; noise-saltpepper: 2",
        "| noise-gaussian |",
        "#### mCE against base",
        "fraction 0.5, seed 0",
    ):
        assert text in md, text
    assert not re.search(r"\bnan\b", md)  # a float NaN printed as such (prose says "NaN")
    csv_lines = (costa_reports / "mine" / "report.csv").read_text().splitlines()
    assert csv_lines[0].endswith("suite_corruption,suite_severity,notes")
    assert any(line.startswith("motion-30,") and ",motion,2," in line for line in csv_lines)


def test_suite_reports_are_recomputed_from_predictions_and_json(costa_reports):
    mine, base = costa_reports / "mine", costa_reports / "base"
    doc = json.loads((mine / "report.json").read_text())
    again = recompute(mine, baseline=base)
    assert again["suite"] == doc["suite"] and again["rows"] == doc["rows"]
    assert recompute(mine)["suite"] == {**doc["suite"], "baseline": None}
    assert mce_from_reports(mine, base) == doc["suite"]["baseline"]
    # another PCK range is another P: the baseline no longer matches
    wide = recompute(mine, thresholds=np.linspace(0, 60, 20))["suite"]
    assert (
        wide["thresholds"]["to"] == 60.0
        and wide["metrics"]["auc"]["mPC"] > doc["suite"]["metrics"]["auc"]["mPC"]
    )
    with pytest.raises(BaselineMismatchError, match="thresholds"):
        recompute(mine, thresholds=np.linspace(0, 60, 20), baseline=base)


def test_baseline_of_other_data_or_without_a_suite_is_refused(costa_reports, val, tmp_path):
    suite = get_suite("costa2021")
    other = evaluate(_shifted(5.0), val, suite.configs([1, 2]), fraction=0.5, seed=7, examples=0)
    with pytest.raises(
        BaselineMismatchError, match=r"data seed: 7, baseline 0; other samples \(their ids differ\)"
    ):
        write_report(other, tmp_path / "x", suite=suite, severities=[1, 2], baseline=costa_reports / "base")
    assert not (tmp_path / "x").exists()  # refused before anything is written
    plain = tmp_path / "plain"
    write_report(other, plain, plots=False)
    with pytest.raises(ValueError, match="a benchmark report without a suite"):
        load_baseline(plain)
    (tmp_path / "report.json").write_text("{}")
    with pytest.raises(ValueError, match="is not a benchmark report"):
        load_baseline(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"nowhere not found \(a report\.json of"):
        load_baseline(tmp_path / "nowhere")
    with pytest.raises(ValueError, match=r"a baseline \(mCE\) needs a suite"):
        write_report(other, tmp_path / "y", baseline=costa_reports / "base")


def test_severity_plot_and_a_compared_model(val, tmp_path):
    suite = get_suite("costa2021")
    configs = suite.configs([1])
    a = evaluate(_shifted(1.0), val, configs, fraction=0.25, examples=1)
    b = evaluate(_shifted(9.0), val, configs, fraction=0.25, examples=1)
    files = write_report(a, tmp_path, compare=b, compare_label="other", suite=suite, severities=[1])
    assert files["severity_curves"].name == "severity_curves.png"
    from PIL import Image

    with Image.open(files["severity_curves"]) as im:  # two models: two rows of panels
        assert im.height > im.width / 2
    doc = json.loads(files["json"].read_text())
    assert doc["compare"]["suite"]["metrics"]["auc"]["cells"]["motion"]["1"] == next(
        r["auc"] for r in doc["compare"]["rows"] if r["name"] == "motion-15"
    )
    md = files["md"].read_text()
    assert "### model: AUC (P)" in md and "### other: AUC (P)" in md


def test_materialized_suite_output_gives_the_streamed_numbers(val, tmp_path):
    mat = pytest.importorskip("keypoint_corrupt.materialize")
    from keypoint_corrupt.datasets import bundled_sample_root

    suite = get_suite("costa2021")
    out = tmp_path / "o"
    spec = mat.DatasetSpec("stb", bundled_sample_root(), bundled=True)
    mat.materialize(mat.MaterializeOptions(out, spec, splits=("val",), suite="costa2021", severities=(1,)))
    assert (out / "val" / "motion" / "1" / "annotations.json").is_file()
    read = evaluate(_shifted(3.0), out, suite.configs([1]), examples=0)
    streamed = evaluate(_shifted(3.0), val, suite.configs([1]), fraction=1.0, examples=0)
    assert list(read.rows) == list(streamed.rows)
    for name, row in read.rows.items():
        assert row.ids == streamed.rows[name].ids
        np.testing.assert_array_equal(row.predictions, streamed.rows[name].predictions)
    a, b = (_json(suite_section(suite, r.rows, [1])) for r in (read, streamed))
    assert a == b
