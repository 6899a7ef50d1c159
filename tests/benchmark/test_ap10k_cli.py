"""AP-10K through the command line, as docs/benchmark.md ("Animals: AP-10K") documents it.

There is no animal model here: ``tests/benchmark/ap10k_oracle.py:JitteredTruth`` answers each animal's
ground truth in its crop plus a seeded jitter of 4 crop pixels, so the AP is known to be high but
below 1.0. The report must name AP-10K's sigmas, keep both species (categories 1 and 26 of the fixture),
and give the AP that pycocotools' COCOeval gives when called directly on the results it wrote. The same
fixture is then materialised with the suite and verified.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from kc_cli_helpers import load_json as load

from keypoint_corrupt.cli.main import main
from keypoint_corrupt.schema import get_schema

TESTS = Path(__file__).resolve().parents[1]
DATA = TESTS / "data" / "animal" / "ap10k"
AP10K = DATA / "test_ap10k.json"
ORACLE = TESTS / "benchmark" / "ap10k_oracle.py"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("ap10k") / "ap10k-c"
    argv = ["benchmark", "--protocol", "coco", "--data", str(AP10K), "--images", str(DATA)]
    argv += ["--suite", "imagenet-c", "--severities", "1-2", "--predict", f"{ORACLE}:JitteredTruth"]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    return out


def pycocotools_ap(results, image_ids):
    """COCOeval(iouType="keypoints") with AP-10K's sigmas, called here on the written results."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = COCO(str(AP10K))
    keep = ("image_id", "category_id", "keypoints", "score")
    dt = gt.loadRes([{k: r[k] for k in keep} for r in results])
    ev = COCOeval(gt, dt, iouType="keypoints")
    ev.params.kpt_oks_sigmas = np.asarray(get_schema("ap10k").sigmas, np.float64)
    ev.params.imgIds = sorted(image_ids)
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return ev.stats


def test_the_report_states_ap10k_sigmas_and_keeps_both_species(report):
    doc = load(report / "report.json")
    sigmas = get_schema("ap10k").sigmas
    assert doc["coco"]["sigmas"] == pytest.approx(sigmas)
    assert doc["coco"]["schema"] == {"dataset": "ap10k", "predict": "ap10k", "reordered": False}
    assert (
        "- OKS sigmas (ap10k): " + ", ".join(f"{s:g}" for s in sigmas) in (report / "report.md").read_text()
    )
    assert get_schema("ap10k").sigmas != get_schema("coco17").sigmas
    categories = sorted(a["category_id"] for a in load(AP10K)["annotations"])
    assert categories == [1, 26]  # antelope and jaguar
    with gzip.open(report / "coco_results.json.gz", "rt", encoding="utf-8") as f:
        results = json.load(f)
    assert len(results["rows"]) == 1 + 15 * 2
    for row in results["rows"].values():
        assert sorted(r["category_id"] for r in row["results"]) == categories


def test_ap_is_what_pycocotools_gives_on_the_written_results(report):
    doc = load(report / "report.json")
    rows = {r["name"]: r for r in doc["rows"]}
    with gzip.open(report / "coco_results.json.gz", "rt", encoding="utf-8") as f:
        written = json.load(f)["rows"]
    for name in ("standard", "imagenet-c.glass_blur-2", "imagenet-c.jpeg_compression-1"):
        stats = pycocotools_ap(written[name]["results"], written[name]["image_ids"])
        assert rows[name]["ap"] == pytest.approx(stats[0], abs=1e-12)
        assert rows[name]["ap50"] == pytest.approx(stats[1], abs=1e-12)
        assert rows[name]["ar"] == pytest.approx(stats[5], abs=1e-12)
    assert 0.5 < rows["standard"]["ap"] < 1.0  # the jitter costs the strictest OKS thresholds
    assert doc["suite"]["name"] == "imagenet-c" and doc["suite"]["severities"] == [1, 2]


def test_materialize_writes_ap10k_c_with_both_species_and_verifies(tmp_path):
    out = tmp_path / "ap10k-c"
    argv = ["materialize", "--data", str(AP10K), "--images", str(DATA), "--suite", "imagenet-c"]
    assert main([*argv, "--severities", "1-2", "--out", str(out), "--workers", "2", "-q"]) == 0
    clean = load(out / "val" / "clean" / "annotations.json")
    source = load(AP10K)
    assert sorted(a["category_id"] for a in clean["annotations"]) == [1, 26]
    assert clean["categories"] == source["categories"]  # all the species, as the source lists them
    for c in clean["categories"]:
        assert c["keypoints"] == list(get_schema("ap10k").joints)
    # the source's annotations, field by field, with its ids
    assert [{k: v for k, v in a.items() if k != "source_id"} for a in clean["annotations"]] == source[
        "annotations"
    ]
    subset = load(out / "val" / "snow" / "2" / "annotations.json")
    by_id = sorted(subset["annotations"], key=lambda a: a["id"])
    assert by_id == sorted(clean["annotations"], key=lambda a: a["id"])
    assert len(list((out / "val").glob("*/[12]/images/*.png"))) == 15 * 2 * 2
    assert main(["verify", str(out)]) == 0
