"""Our catalog model against the one DerivaML makes, and a catalog DerivaML made, used as is.

``data/derivaml-1.30-catalog-model.json`` is the model DerivaML 1.30's ``create_ml_catalog``
makes (``public``, ``WWW``, ``deriva-ml``): its own code, run against a stand-in ERMrest that
only names constraints as ERMrest does (see ``data/README.md``). Both tests run on the
embedded store and on the local DERIVA server.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import ServerKit
from pytest_deriva import DerivaML, ExecutionConfiguration, Status
from pytest_deriva.catalog import CatalogPort, connect
from pytest_deriva.catalog.schema import SEED_TERMS
from pytest_deriva.catalog.server import ServerCatalog, create_catalog
from pytest_deriva.catalog.setup import init_catalog

SYSTEM_COLUMNS = {"RID", "RCT", "RMT", "RCB", "RMB"}
DERIVAML_MODEL = json.loads((Path(__file__).parent / "data" / "derivaml-1.30-catalog-model.json").read_text())

# Where we differ from DerivaML on purpose:
# - vocabulary IDs: DerivaML prefixes CURIEs with the project name given to create_ml_catalog,
#   we with the schema name (a catalog we set up has no project name);
# - Dataset.Version: DerivaML's foreign key cascades, so deleting a version row deletes its
#   dataset; ours refuses that delete;
# - Dataset: we add visible-foreign-keys (Versions, Members and Executions on its record page).
INTENDED = {
    ("Asset_Role", "ID"),
    ("Asset_Type", "ID"),
    ("Dataset_Type", "ID"),
    ("Feature_Name", "ID"),
    ("Workflow_Type", "ID"),
    ("Dataset", "fkeys"),
    ("Dataset", "annotations"),
}


def shape(model: dict[str, Any], schema: str) -> dict[tuple[str, str], Any]:
    """What a user of the catalog sees of each table: columns (type, nullok, default), keys,
    foreign keys with their rules, and which Chaise annotations it has."""
    out: dict[tuple[str, str], Any] = {}
    for name, t in model["schemas"][schema]["tables"].items():
        for c in t["column_definitions"]:
            # A server states the defaults of the system columns it fills; a model document does not.
            default = None if c["name"] in SYSTEM_COLUMNS else c.get("default")
            out[(name, c["name"])] = (c["type"]["typename"], c.get("nullok", True), default)
        out[(name, "keys")] = sorted(sorted(k["unique_columns"]) for k in t["keys"])
        out[(name, "fkeys")] = sorted(
            (
                [c["column_name"] for c in fk["foreign_key_columns"]],
                f"{fk['referenced_columns'][0]['schema_name']}:{fk['referenced_columns'][0]['table_name']}",
                fk.get("on_delete") or "NO ACTION",
                fk.get("on_update") or "NO ACTION",
            )
            for fk in t["foreign_keys"]
        )
        out[(name, "annotations")] = sorted(t.get("annotations") or {})
    return out


@pytest.fixture
def bare(request: pytest.FixtureRequest, tmp_path: Path, catalog_location: str) -> Iterator[CatalogPort]:
    """A catalog with nothing of ours in it: a new folder, or a new empty catalog on the server."""
    if catalog_location.startswith("https://"):
        kit: ServerKit = request.getfixturevalue("server_login")
        url = create_catalog(kit.url)
        cat: CatalogPort = ServerCatalog(url)
        yield cat
        cat.close()
        kit.delete_catalog(url)
    else:
        cat = connect(str(tmp_path / "bare"))
        yield cat
        cat.close()
        shutil.rmtree(tmp_path / "bare", ignore_errors=True)


@pytest.mark.parametrize("schema", ["deriva-ml", "WWW"])
def test_our_model_is_the_one_derivaml_makes(bare: CatalogPort, schema: str) -> None:
    init_catalog(bare)
    ours, theirs = shape(bare.refresh_model().doc, schema), shape(DERIVAML_MODEL, schema)
    assert {t for t, _ in ours} == {t for t, _ in theirs}  # the same tables
    differences = {k: (ours.get(k), theirs.get(k)) for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k)}
    assert set(differences) <= INTENDED, {k: v for k, v in differences.items() if k not in INTENDED}


def test_a_catalog_derivaml_made_is_used_as_is(bare: CatalogPort, project: Path) -> None:
    """DerivaML's tables, terms and annotations in place: init adds only what DerivaML lacks (our
    extra dataset type), changes nothing, and runs record there."""
    if "public" not in bare.refresh_model().schemas:  # a server has it; a new folder does not
        bare.create_tables("public", [DERIVAML_MODEL["schemas"]["public"]["tables"]["ERMrest_Client"]])
    for name in ("deriva-ml", "WWW"):
        bare.create_tables(name, list(DERIVAML_MODEL["schemas"][name]["tables"].values()))
    bare.set_annotations(None, None, DERIVAML_MODEL["annotations"])
    for vocab, terms in SEED_TERMS.items():
        upstream = [{"Name": n, "Description": d} for n, d in terms if n != "Complete"]
        bare.insert("deriva-ml", vocab, upstream)
    before = shape(bare.refresh_model().doc, "deriva-ml") | shape(bare.refresh_model().doc, "WWW")

    done = init_catalog(bare)
    # Added, never replaced: the Dataset record page's sections, and DerivaML's navbar in place of
    # deriva-py's baseline one (public and WWW only), as DerivaML's own apply_catalog_annotations
    # puts it there on its first table.
    # pytest-deriva's run index (issue 11) in its own schema, deriva-ml left as DerivaML made it;
    # an embedded store makes it when a run first writes to it. A server also gets Push_Origin
    # (issue 14), where pushes record where rows came from.
    index = (
        []
        if bare.creates_on_demand
        else [f"created table pytest-deriva:{t}" for t in ("Execution_Parameter", "Execution_Metric", "Push_Origin")]
    )
    assert done == [
        "annotated deriva-ml:Dataset (1 annotations)",
        *index,
        "set the catalog's Chaise navbar and display annotations",
        "added 1 Dataset_Type terms: Complete",
    ]
    after = shape(bare.refresh_model().doc, "deriva-ml") | shape(bare.refresh_model().doc, "WWW")
    assert {k for k in before if before[k] != after[k]} == {("Dataset", "annotations")}
    assert init_catalog(bare) == []

    ml = DerivaML(bare.uri, working_dir=project / ".work")
    workflow = ml.create_workflow("train", "Training", source_path=project / "train.py")
    exe = ml.create_execution(ExecutionConfiguration(description="on DerivaML's catalog"), workflow=workflow)
    with exe.execute() as e:
        e.asset_file_path("Execution_Asset", "model.txt").write_text("weights")
    exe.upload_execution_outputs()
    record = ml.lookup_execution(exe.execution_rid)
    assert record.status == Status.completed
    assert "model.txt" in {a.filename for a in record.list_assets(asset_role="Output")}
    ml.catalog.close()
