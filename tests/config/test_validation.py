from pathlib import Path

import pytest

from sweep import config as config_module
from sweep.config import ConfigError, cells, from_dict, parse_k, widths_for


@pytest.mark.parametrize(
    "text,expected",
    [("6..8", (6, 7, 8)), ("6,8,10", (6, 8, 10)), ("6", (6,)), ("6..7,10", (6, 7, 10))],
)
def test_parse_k(text, expected):
    assert parse_k(text) == expected


@pytest.mark.parametrize(
    "spec,k,expected",
    [
        ("k", 6, (6,)),
        ("k+1", 6, (7,)),
        ("k..k+2", 6, (6, 7, 8)),
        ("k,2*k", 3, (3, 6)),
        (4, 9, (4,)),
    ],
)
def test_widths(spec, k, expected):
    assert widths_for(spec, k) == expected


def test_cells_use_the_protocol():
    cfg = from_dict({"sweep": {"k": "6..7", "n": "k..k+1"}})
    grid = cells(cfg)
    assert [(c.k, c.n, c.d) for c in grid] == [(6, 6, 6), (6, 7, 6), (7, 7, 7), (7, 8, 7)]
    assert grid[0].step_size == pytest.approx(5 / 6)
    assert grid[0].init_scale == pytest.approx(6**-0.5)


POINTS = {
    "problem": {
        "kind": "empirical",
        "data": "points",
        "teacher": "targets",
        "d": 1,
        "points": [-1.0, 1.0],
        "targets": [0.0, 1.0],
    },
    "optimizer": {"step_size": 0.1},
}


@pytest.mark.parametrize(
    "raw,field",
    [
        ({"sweep": {"k": "20..6"}}, "sweep.k"),
        ({"sweep": {"k": "0..3"}}, "sweep.k"),
        ({"sweep": {"n": "k-30"}}, "sweep.n"),
        ({"sweep": {"n": "k+"}}, "sweep.n"),
        ({"sweep": {"seeds": -5}}, "sweep.seeds"),
        ({"sweep": {"seeds": "many"}}, "sweep.seeds"),
        ({"sweep": {"colour": 1}}, "sweep.colour"),
        ({"optimizer": {"step_size": 0}}, "optimizer.step_size"),
        ({"optimizer": {"step_size": "1/(k-k)"}}, "optimizer.step_size"),
        ({"optimizer": {"stepsize": 0.1}}, "optimizer.stepsize"),
        ({"optimizer": {"kind": "lbfgs"}}, "optimizer.kind"),
        ({"init": {"kind": "normal", "scale": "-1"}}, "init.scale"),
        ({"stop": {"grad_tol": 0}}, "stop.grad_tol"),
        ({"stop": {"loss_tol": 1e-3}}, "stop.loss_tol"),
        ({"engine": {"batch_size": -1}}, "engine.batch_size"),
        ({"extra": {}}, "extra"),
        ({"problem": {"depth": 3}}, "problem.depth"),
        ({"problem": {"kind": "empirical", "depth": 1}}, "problem.depth"),
        ({"problem": {"kind": "empirical", "biases": "yes"}}, "problem.biases"),
        ({"problem": {"kind": "empirical", "data": "mnist"}}, "problem.data"),
        ({"problem": {"kind": "empirical", "data": "points"}}, "problem.teacher"),
        ({"problem": {"kind": "empirical", "d": "k-1"}}, "problem.d"),
        (
            {"problem": {"kind": "empirical", "samples": 10}, "optimizer": {"batch_size": 11}},
            "optimizer.batch_size",
        ),
        ({"optimizer": {"batch_size": 8}}, "optimizer.batch_size"),
        ({"optimizer": {"schedule": "step"}}, "optimizer.schedule"),
        ({"init": {"parameterization": "ntk"}}, "init.parameterization"),
        ({"stop": {"plateau_tol": 1e-6, "polish_after": 0}}, "stop.polish_after"),
        (
            {"sweep": {"k": 0}, **POINTS, "problem": {**POINTS["problem"], "targets": [1.0]}},
            "problem.targets",
        ),
        ({**POINTS, "sweep": {"k": 3}}, "sweep.k"),
        ({"problem": {"kind": "empirical", "points": ["a"]}}, "problem.points"),
    ],
)
def test_bad_values_name_their_field(raw, field):
    with pytest.raises(ConfigError) as error:
        from_dict(raw)
    message = str(error.value)
    assert message.startswith((field + ": expected ", field + ": unknown key; "))
    assert "\n" not in message


def test_configs_default_is_generated_from_the_schema():
    shipped = Path(__file__).parents[2] / "configs" / "default.toml"
    assert shipped.read_text() == config_module.default_toml(), "run `make defaults`"
    assert config_module.load(None) == config_module.load(shipped)


def test_every_schema_field_has_a_meaning():
    import dataclasses

    from sweep.config import schema

    for cls in (schema.Config, *schema.SECTIONS.values()):
        for f in dataclasses.fields(cls):
            if f.name not in schema.SECTIONS:
                assert f.metadata.get("doc"), f"{cls.__name__}.{f.name}"


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[2] / "configs").glob("*.toml")))
def test_shipped_configs_are_valid(path):
    config_module.load(path)


def test_round_trip():
    cfg = from_dict({"sweep": {"k": "6..7", "n": "k+1"}, "optimizer": {"kind": "adam"}})
    assert from_dict(cfg.to_raw()) == cfg


def test_a_points_problem_has_no_teacher_width():
    cfg = from_dict({**POINTS, "sweep": {"k": 0, "n": "4,8"}})
    assert [(c.k, c.n, c.d) for c in config_module.cells(cfg)] == [(0, 4, 1), (0, 8, 1)]
    assert cfg.problem.points == (-1.0, 1.0)
    assert from_dict(cfg.to_raw()) == cfg


@pytest.mark.parametrize("n", ["k-1", "k-2..k"])
def test_a_student_narrower_than_its_teacher_is_refused_in_one_line(n):
    with pytest.raises(
        ConfigError, match=r"^sweep.n: expected student widths n >= k, got"
    ) as error:
        cells(from_dict({"sweep": {"k": "6", "n": n}}))
    assert "\n" not in str(error.value) and "at k = 6" in str(error.value)
