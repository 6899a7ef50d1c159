"""The predict door (issue 12): ``--predict`` files with sibling modules, classes, factories and
callable objects, ``--predict-arg``, one-line errors (exit 2 loading, exit 1 inside predict),
``--debug`` tracebacks and the few-images warning. Each run is one or two configurations of the
bundled sample (8 images) with a trivial predictor."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
from bench_helpers import direct_items

from keypoint_corrupt.benchmark.callables import CallableLoadError, load_callable, parse_predict_args
from keypoint_corrupt.cli.main import main

ONEHAND = Path(__file__).resolve().parents[1] / "data" / "hands" / "onehand10k"
ONEHAND_JSON = ONEHAND / "test_onehand10k.json"
ERROR = "keypoint-corrupt benchmark: error: "
WARNING = "keypoint-corrupt benchmark: warning: "

# Every joint at the crop centre: no torch, a few microseconds per batch.
CENTRE = "np.repeat(np.asarray(crops.center, dtype=float)[:, None], 21, axis=1)"


@pytest.fixture(autouse=True)
def _user_modules_forgotten():
    """The user files' modules are dropped after each test, and sys.path is left as it was."""
    path = list(sys.path)
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith(("door_", "_keypoint_corrupt_user_")):
            del sys.modules[name]
    assert sys.path == path


def write(folder: Path, name: str, code: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(code))
    return path


def bench(tmp_path: Path, *argv: str, configs: str = "motion-15") -> int:
    out = tmp_path / "report"
    return main(["benchmark", *argv, "--configs", configs, "--out", str(out), "--no-progress", "--no-plots"])


def report(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "report" / "report.json").read_text())


def stderr_lines(capsys) -> tuple[list[str], list[str]]:
    """(error lines, warning lines) of stderr; every line is one or the other, or a traceback's."""
    lines = capsys.readouterr().err.strip().splitlines()
    return [x for x in lines if not x.startswith(WARNING)], [x for x in lines if x.startswith(WARNING)]


# -- loading ------------------------------------------------------------------------------------


def test_a_file_imports_its_sibling_module_from_any_directory(tmp_path, monkeypatch):
    models = tmp_path / "models"
    models.mkdir()
    write(models, "door_geometry.py", "import numpy as np\n\ndef centre(crops):\n    return " + CENTRE)
    write(models, "door_model.py", "from door_geometry import centre\n\ndef predict(images, crops):\n"
          "    return centre(crops)\n")  # fmt: skip
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert bench(tmp_path, "--predict", "../models/door_model.py:predict") == 0
    doc = report(tmp_path)
    assert [r["name"] for r in doc["rows"]] == ["standard", "motion-15"]
    assert str(models) not in sys.path  # put first while importing, removed afterwards


def test_a_class_is_built_once_with_predict_args(tmp_path, capsys):
    log = tmp_path / "built.jsonl"
    path = write(
        tmp_path,
        "door_class.py",
        f"""
        import json
        import numpy as np

        class Shifted:
            def __init__(self, shift, name, scales, tag, half=False, log="{log}"):
                self.shift = shift
                with open(log, "a") as f:
                    kwargs = dict(shift=shift, name=name, scales=scales, tag=tag, half=half)
                    f.write(json.dumps(kwargs) + "\\n")

            def __call__(self, images, crops):
                return {CENTRE} + self.shift
        """,
    )
    args = ["--predict-arg", "shift=2.5", "--predict-arg", "name=dense", "--predict-arg", "scales=[1, 2]"]
    args += ["--predict-arg", 'tag="7"', "--predict-arg", "half=true"]
    code = bench(tmp_path, "--predict", f"{path}:Shifted", *args, "--compare-predict", f"{path}:Shifted",
                 "--compare-predict-arg", "shift=0", "--compare-predict-arg", "name=x",
                 "--compare-predict-arg", "scales=null", "--compare-predict-arg", "tag=7")  # fmt: skip
    assert code == 0, capsys.readouterr().err
    built = [json.loads(line) for line in log.read_text().splitlines()]
    assert built == [
        {"shift": 2.5, "name": "dense", "scales": [1, 2], "tag": "7", "half": True},
        {"shift": 0, "name": "x", "scales": None, "tag": 7, "half": False},
    ]  # once per model: JSON values when they parse, else strings
    doc = report(tmp_path)
    assert doc["rows"][0]["mean_epe"] != doc["compare"]["rows"][0]["mean_epe"]
    assert "--predict-arg shift=2.5 --predict-arg name=dense" in doc["command"]


def test_a_callable_instance_and_a_factory(tmp_path, capsys):
    path = write(
        tmp_path,
        "door_objects.py",
        f"""
        import numpy as np

        class Centre:
            def __init__(self, shift=0.0):
                self.shift = shift

            def __call__(self, images, crops):
                return {CENTRE} + self.shift

        predictor = Centre()

        def make(shift=1.0):
            def predict(images, crops):
                return {CENTRE} + shift
            return predict
        """,
    )
    epe = {}
    for name, extra in [("predictor", []), ("make()", []), ("make", ["--predict-arg", "shift=3"])]:
        assert bench(tmp_path, "--predict", f"{path}:{name}", *extra) == 0, capsys.readouterr().err
        epe[name] = report(tmp_path)["rows"][0]["mean_epe"]
    assert len(set(epe.values())) == 3  # shifts 0, 1 and 3: each built as asked


def test_module_name_keeps_working_with_a_class(tmp_path, monkeypatch):
    code = f"import numpy as np\n\nclass P:\n    def __call__(self, images, crops):\n        return {CENTRE}"
    write(tmp_path, "door_pkg_mod.py", code)
    monkeypatch.chdir(tmp_path)
    assert bench(tmp_path, "--predict", "door_pkg_mod:P") == 0


LOAD_ERRORS = {
    "door_missing.py:predict": "file not found",
    "door_user.py:nothing": "has no attribute 'nothing'",
    "door_user.py:THRESHOLD": "door_user.py:THRESHOLD is an int, not a function, a callable object",
    "door_user.py:NotCallable": "returned a NotCallable, which is not callable: define __call__",
    "door_user.py:Raising": "Raising() raised ValueError: no weights at /nowhere.pt",
    "door_broken.py:predict": "importing ",
}


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("spec", list(LOAD_ERRORS))
def test_loading_errors_are_one_line_exit_2(spec, debug, tmp_path, capsys):
    write(tmp_path, "door_user.py", """
        THRESHOLD = 3

        class NotCallable:
            pass

        class Raising:
            def __init__(self):
                raise ValueError("no weights at /nowhere.pt")
        """)  # fmt: skip
    write(tmp_path, "door_broken.py", "import door_no_such_helper\n")
    argv = ["--predict", f"{tmp_path}/{spec}", *(["--debug"] if debug else [])]
    assert bench(tmp_path, *argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert lines[-1].startswith(f"{ERROR}--predict {tmp_path}/{spec}: ") and LOAD_ERRORS[spec] in lines[-1]
    if spec.startswith("door_broken"):
        assert "ModuleNotFoundError: No module named 'door_no_such_helper'" in lines[-1]
    assert ("Traceback" in err) == debug
    if debug and spec.startswith(("door_broken", "door_user.py:Raising")):  # the user's own frames
        assert str(tmp_path / spec.split(":")[0]) in err
    if not debug:
        assert len(lines) == 1, err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--predict", "numpy:zeros", "--predict-arg", "size"], "--predict-arg expected KEY=VALUE"),
        (["--predict", "numpy:zeros", "--predict-arg", "a=1", "--predict-arg", "a=2"], "a given twice"),
        (["--predict-arg", "a=1"], "--predict-arg needs --predict"),
        (["--predict", "numpy:zeros", "--compare-predict-arg", "a=1"], "--compare-predict-arg needs"),
    ],
)
def test_predict_arg_errors(argv, message, tmp_path, capsys):
    assert bench(tmp_path, *argv) == 2
    errors, _ = stderr_lines(capsys)
    assert len(errors) == 1 and message in errors[0] and errors[0].startswith(ERROR)


def test_parse_and_load_from_python():
    assert parse_predict_args(["w=a.pt", "n=3", "x=1.5", "on=false", "s=[1,2]", "d={}", "e="]) == {
        "w": "a.pt", "n": 3, "x": 1.5, "on": False, "s": [1, 2], "d": {}, "e": ""
    }  # fmt: skip
    with pytest.raises(CallableLoadError, match="KEY=VALUE"):
        parse_predict_args(["1x=2"])
    with pytest.raises(CallableLoadError, match="MODULE:NAME"):
        load_callable("numpy")
    assert load_callable("collections:OrderedDict.fromkeys") is not None


# -- errors inside predict ------------------------------------------------------------------------

FAILING = """
    import numpy as np

    class Failing:
        def __init__(self, kind):
            self.kind, self.calls = kind, 0

        def __call__(self, images, crops):
            self.calls += 1
            if self.calls == 2:  # the first batch of motion-15 (standard is one batch of 8)
                kind = {"KeyError": KeyError, "RuntimeError": RuntimeError, "ValueError": ValueError}
                raise kind[self.kind]("joint 7 of " + self.kind)
            return np.zeros((len(crops), 21, 2))
    """


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("kind", ["KeyError", "RuntimeError", "ValueError"])
def test_an_error_inside_predict_is_one_line_exit_1(kind, debug, tmp_path, val, capsys):
    path = write(tmp_path, "door_failing.py", FAILING)
    argv = ["--predict", f"{path}:Failing", "--predict-arg", f"kind={kind}", "--batch-size", "8"]
    assert bench(tmp_path, *argv, *(["--debug"] if debug else [])) == 1
    err = capsys.readouterr().err
    lines = [x for x in err.strip().splitlines() if not x.startswith(WARNING)]
    line = lines[-1]
    assert line.startswith(f"{ERROR}{path}:Failing: "), err
    assert kind in line and f"joint 7 of {kind}" in line and "motion-15" in line
    ids = [str(item["id"]) for item in direct_items(val, ["motion-15"])["motion-15"]]
    assert any(i in line for i in ids), (ids, line)
    assert ("Traceback" in err) == debug
    if debug:
        assert f'File "{path}"' in err and "in __call__" in err  # the user's frame is shown
    else:
        assert len(lines) == 1, err
    assert not (tmp_path / "report" / "report.json").exists()


# -- few images per configuration ------------------------------------------------------------------


def test_few_images_per_configuration_warn(tmp_path, capsys):
    centre = write(tmp_path, "door_centre.py", f"import numpy as np\n\ndef predict(images, crops):\n"
                   f"    return {CENTRE}\n")  # fmt: skip
    data = ["--predict", f"{centre}:predict", "--data", str(ONEHAND_JSON)]
    assert bench(tmp_path, *data, configs="noise-gaussian") == 0
    _, warnings = stderr_lines(capsys)
    assert warnings == [
        f"{WARNING}only 1 image per configuration at --fraction 0.2 on 4 images: results are noisy "
        "(fewer than 20); use a larger set (--fraction 1.0 gives 4)"
    ]
    # 21 annotations (the 4 images repeated): --fraction 1.0 gives 21 per configuration, no warning
    coco = json.loads(ONEHAND_JSON.read_text())
    base = coco["annotations"]
    coco["annotations"] = [dict(base[k % 4], id=1000 + k) for k in range(21)]
    big = tmp_path / "big.json"
    big.write_text(json.dumps(coco))
    data = ["--predict", f"{centre}:predict", "--data", str(big), "--images", str(ONEHAND)]
    assert bench(tmp_path, *data, configs="noise-gaussian") == 0
    assert report(tmp_path)["rows"][1]["images"] == 4
    _, warnings = stderr_lines(capsys)
    assert warnings == [
        f"{WARNING}only 4 images per configuration at --fraction 0.2 on 21 images: results are noisy "
        "(fewer than 20); use --fraction 0.96 or more"
    ]
    assert bench(tmp_path, *data, "--fraction", "1.0", configs="noise-gaussian") == 0
    assert report(tmp_path)["rows"][1]["images"] == 21
    assert stderr_lines(capsys)[1] == []
