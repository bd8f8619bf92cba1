"""pytest with Hydra: --deriva-sweep in Hydra's override grammar, and @pytest.mark.deriva(config=...)."""

from __future__ import annotations

import textwrap

from _plugin_helpers import catalog, commit, make_project, parents_and_children

MODEL = textwrap.dedent(
    """
    def experiment_model(lr=0.1, epochs=10, ml_instance=None, execution=None):
        return {"score": lr * epochs}
    """
)

PARAMETRIZED = textwrap.dedent(
    """
    import pytest

    @pytest.mark.parametrize("epochs", [5, 10])
    @pytest.mark.parametrize("lr", [0.1, 0.01])
    def experiment_model(lr=0.1, epochs=10, ml_instance=None, execution=None):
        return {"score": lr * epochs}
    """
)


def _children(root):
    with catalog(root / ".deriva") as ml:
        [(parent, links)] = parents_and_children(ml).items()
        out = []
        for link in links:
            child = ml.lookup_execution(link["Nested_Execution"])
            meta = {
                a.filename: a for a in child.list_assets("Output") if a.filename and a.filename.endswith("-config.yaml")
            }
            [config] = meta.values()
            path = ml.catalog.objects.get(config.url, root / "read" / child.rid / "config.yaml")
            out.append((link["Sequence"], child.description, path.read_text()))
        return ml.lookup_execution(parent).description, out


def test_command_line_sweep_records_what_parametrize_records(pytester, tmp_path):
    swept = make_project(pytester, {"experiment_model.py": MODEL})
    result = pytester.runpytest_subprocess(
        "--deriva-run", "experiment_model.py", "--deriva-sweep", "model_config.lr=0.1,0.01", "epochs=5,10"
    )
    result.assert_outcomes(passed=4)
    from_cli = _children(swept)

    other = tmp_path / "other"
    other.mkdir()
    (swept / "experiment_model.py").write_text(PARAMETRIZED)
    commit(swept)
    result = pytester.runpytest_subprocess("--deriva-run", "experiment_model.py", "--deriva-catalog", str(other / "c"))
    result.assert_outcomes(passed=4)
    with catalog(other / "c") as ml:
        [(_parent, links)] = parents_and_children(ml).items()
        assert len(links) == 4
    # Same descriptions and parameters, child by child.
    assert from_cli[0] == "experiment_model"
    assert [(seq, desc) for seq, desc, _ in from_cli[1]] == [(i, f"[Job {i}] experiment_model") for i in range(4)]
    configs = {text for _, _, text in from_cli[1]}
    assert len(configs) == 4
    assert any('"lr": 0.01' in c and '"epochs": 10' in c for c in configs)


def test_command_line_sweep_errors_are_usage_errors(pytester):
    make_project(pytester, {"experiment_model.py": MODEL})
    result = pytester.runpytest_subprocess("--deriva-run", "experiment_model.py", "--deriva-sweep", "lr=0.1,,0.01")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--deriva-sweep*"])
    result = pytester.runpytest_subprocess("--deriva-run", "experiment_model.py", "--deriva-sweep", "foo=1,2")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--deriva-sweep sets 'foo', which no collected experiment takes*"])
    assert not (pytester.path / ".deriva" / "work" / "execution").exists()


MIXED = textwrap.dedent(
    """
    import pytest

    def experiment_takes_lr(lr=0.1, ml_instance=None, execution=None):
        return {"score": lr}

    @pytest.mark.parametrize("seed", [1, 2])
    def experiment_product(lr, seed, execution):
        \"\"\"Product\"\"\"
        return {"score": lr * seed}

    def experiment_plain(execution):
        \"\"\"Plain\"\"\"
        return {"score": 1.0}
    """
)

BOTH = textwrap.dedent(
    """
    import pytest

    @pytest.mark.parametrize("lr", [1, 2])
    def experiment_both(lr, execution):
        pass
    """
)


def test_command_line_sweep_applies_to_the_experiments_that_take_its_parameters(pytester):
    root = make_project(pytester, {"experiment_mixed.py": MIXED})
    result = pytester.runpytest_subprocess(
        "--deriva-run", "-p", "no:randomly", "experiment_mixed.py", "--deriva-sweep", "lr=0.5,0.25", "epochs=1,2"
    )
    # lr only (epochs is taken by none of them... but by no experiment at all is an error, see below)
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--deriva-sweep sets 'epochs', which no collected experiment takes*"])

    result = pytester.runpytest_subprocess(
        "--deriva-run", "-p", "no:randomly", "experiment_mixed.py", "--deriva-sweep", "lr=0.5,0.25"
    )
    # takes_lr: 2 runs; product: 2 lr x 2 seeds; plain: left as it is, one run.
    result.assert_outcomes(passed=7)
    with catalog(root / ".deriva") as ml:
        runs = ml.find_executions()
        by_desc: dict[str, list] = {}
        for r in runs:
            by_desc.setdefault(r.description.split("] ")[-1], []).append(r)
        [plain] = by_desc["Plain"]
        assert not plain.is_nested()
        tree = parents_and_children(ml)
        assert sorted(len(links) for links in tree.values()) == [2, 4]
        [product] = [p for p in tree if ml.lookup_execution(p).description == "Product"]
        params = sorted(
            (
                ml.lookup_execution(link["Nested_Execution"]).parameters["lr"],
                ml.lookup_execution(link["Nested_Execution"]).parameters["seed"],
            )
            for link in tree[product]
        )
        assert params == [(0.25, 1), (0.25, 2), (0.5, 1), (0.5, 2)]


def test_a_parameter_given_by_parametrize_and_the_command_line_sweep_is_an_error_naming_the_experiment(pytester):
    make_project(pytester, {"experiment_both.py": BOTH})
    result = pytester.runpytest_subprocess("--deriva-run", "experiment_both.py", "--deriva-sweep", "lr=3,4")
    assert result.ret == 2
    result.stdout.fnmatch_lines(
        ["*experiment_both.py::experiment_both: 'lr' is both parametrized and given by --deriva-sweep; use one*"]
    )
    assert not (pytester.path / ".deriva" / "work" / "execution").exists()


CONFIGS = textwrap.dedent(
    """
    from hydra_zen import builds, store

    from experiment_cfg import train

    store(builds(train, lr=0.5, epochs=3, zen_partial=True), group="model_config", name="quick")
    """
)

CONFIGURED = textwrap.dedent(
    """
    import pytest

    def train(lr=0.1, epochs=1, ml_instance=None, execution=None):
        return {"lr": lr, "epochs": epochs}

    @pytest.mark.deriva(config="quick")
    def experiment_cfg(lr=0.1, epochs=1, ml_instance=None, execution=None):
        return train(lr=lr, epochs=epochs)
    """
)


def test_marker_config_takes_parameters_from_the_store(pytester):
    root = make_project(
        pytester,
        {
            "experiment_cfg.py": CONFIGURED,
            "cfgpkg/__init__.py": "",
            "cfgpkg/models.py": CONFIGS,
        },
        ini="deriva_config_package = cfgpkg\n",
    )
    result = pytester.runpytest_subprocess("--deriva-run", "experiment_cfg.py")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*lr=0.5 epochs=3*"])
    with catalog(root / ".deriva") as ml:
        [record] = ml.find_executions()
        assert record.status.value == "Completed"
