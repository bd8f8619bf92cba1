"""The ``deriva-ml`` schema as ERMrest JSON, written once and applied to either adapter.

Table documents are built with the ``deriva`` package's model helpers (``Table.define*``), so
they are exactly what a DERIVA server accepts. The ``deriva`` import is deferred to the
functions here: opening an existing catalog never needs it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from pytest_deriva.enums import MLAsset, MLVocab

if TYPE_CHECKING:
    from pytest_deriva.catalog.model import Model

__all__ = [
    "ML_SCHEMA",
    "SEED_TERMS",
    "asset_association_tables",
    "asset_table",
    "association_table",
    "catalog_annotations",
    "column",
    "extra_schemas",
    "ml_schema_tables",
    "plain_table",
    "public_schema_tables",
    "replaces_catalog_annotations",
    "schema_annotations",
    "vocabulary_table",
]

ML_SCHEMA = "deriva-ml"

#: Terms every new catalog starts with (catalog-model.md), as (name, description).
SEED_TERMS: dict[str, list[tuple[str, str]]] = {
    MLVocab.asset_type: [
        ("Execution_Config", "Configuration file of an execution, such as a uv.lock."),
        ("Runtime_Env", "Snapshot of the runtime environment an execution ran in."),
        ("Hydra_Config", "Hydra configuration file of an execution."),
        ("Deriva_Config", "The ExecutionConfiguration of an execution, as JSON."),
        ("Execution_Metadata", "Metadata file recorded with an execution."),
        ("Execution_Asset", "File produced or used by an execution."),
        ("File", "A file registered in the catalog."),
        ("Input_File", "A file an execution read."),
        ("Output_File", "A file an execution wrote."),
        ("Model_File", "Trained model weights or a serialized model."),
        ("Notebook_Output", "An executed notebook."),
    ],
    MLVocab.asset_role: [
        ("Input", "The asset was an input of the execution."),
        ("Output", "The asset was an output of the execution."),
    ],
    MLVocab.dataset_type: [
        ("Complete", "A dataset with every member of its kind."),
        ("File", "A dataset of files."),
        ("Training", "A dataset for training a model."),
        ("Testing", "A dataset for testing a model."),
        ("Validation", "A dataset for validating a model."),
        ("Split", "A dataset split into parts."),
        ("Labeled", "A dataset whose members carry labels."),
        ("Unlabeled", "A dataset whose members carry no labels."),
    ],
    MLVocab.workflow_type: [
        ("Training", "Trains a model."),
        ("Testing", "Tests a model."),
        ("Prediction", "Predicts with a trained model."),
        ("Feature_Creation", "Computes feature values."),
        ("Visualization", "Makes figures or other visual output."),
        ("Analysis", "Analyses data or results."),
        ("Ingest", "Loads data into the catalog."),
        ("Data_Cleaning", "Cleans data."),
        ("Embedding", "Computes embeddings."),
        ("Dataset_Management", "Creates or edits datasets."),
        ("VGG19", "Uses a VGG19 network."),
        ("RETFound", "Uses the RETFound foundation model."),
        ("Multimodal", "Combines several data modalities."),
    ],
    MLVocab.feature_name: [],
}


def _em() -> Any:
    from deriva.core import ermrest_model

    return ermrest_model


def column(
    name: str, typename: str, *, nullok: bool = True, default: Any = None, comment: str | None = None
) -> dict[str, Any]:
    """An ERMrest column definition of a builtin type (``text``, ``int4``, ``text[]``, ...)."""
    em = _em()
    return dict(em.Column.define(name, em.builtin_types[typename], nullok=nullok, default=default, comment=comment))


def _fkey(
    cols: Sequence[str],
    schema: str,
    table: str,
    refcols: Sequence[str],
    on_delete: str = "NO ACTION",
    on_update: str = "NO ACTION",
) -> dict[str, Any]:
    return dict(
        _em().ForeignKey.define(list(cols), schema, table, list(refcols), on_delete=on_delete, on_update=on_update)
    )


def vocabulary_table(name: str, schema: str = ML_SCHEMA, comment: str | None = None) -> dict[str, Any]:
    """A controlled vocabulary (ID, URI, Name, Description, Synonyms)."""
    return dict(_em().Table.define_vocabulary(name, f"{schema}:{{RID}}", comment=comment))


def plain_table(
    name: str,
    columns: Iterable[dict[str, Any]] = (),
    *,
    keys: Iterable[Sequence[str]] = (),
    fkeys: Iterable[tuple[Sequence[str], str, str, Sequence[str]]] = (),
    comment: str | None = None,
    cascade: bool = False,
) -> dict[str, Any]:
    """A table with the given columns, unique keys and foreign keys ``(cols, schema, table, refcols)``;
    with ``cascade`` the foreign keys delete and update along with their targets (associations)."""
    em = _em()
    rule = {"on_delete": "CASCADE", "on_update": "CASCADE"} if cascade else {}
    return dict(
        em.Table.define(
            name,
            column_defs=list(columns),
            key_defs=[em.Key.define(list(k)) for k in keys],
            fkey_defs=[_fkey(*fk, **rule) for fk in fkeys],
            comment=comment,
        )
    )


def association_table(
    name: str,
    left: tuple[str, str, str, str],
    right: tuple[str, str, str, str],
    extra: Iterable[dict[str, Any]] = (),
    extra_fkeys: Iterable[tuple[Sequence[str], str, str, Sequence[str]]] = (),
) -> dict[str, Any]:
    """An association ``name`` with columns ``left``/``right`` = (column, schema, table, refcolumn)."""
    cols = [column(left[0], "text", nullok=False), column(right[0], "text", nullok=False), *extra]
    # Associations cascade, as upstream's define_association makes them: deleting a row takes its links.
    return plain_table(
        name,
        cols,
        keys=[(left[0], right[0])],
        fkeys=[
            ([left[0]], left[1], left[2], [left[3]]),
            ([right[0]], right[1], right[2], [right[3]]),
            *extra_fkeys,
        ],
        cascade=True,
    )


def asset_table(
    schema: str,
    name: str,
    metadata_columns: Iterable[dict[str, Any]] = (),
    fkeys: Iterable[tuple[Sequence[str], str, str, Sequence[str]]] = (),
    comment: str | None = None,
) -> dict[str, Any]:
    """An asset table (URL, Filename, Description, Length, MD5, plus metadata columns), with the
    Chaise annotations DerivaML gives one: named by its file, its Asset Types shown and faceted."""
    em = _em()
    doc = dict(
        em.Table.define_asset(
            schema,
            name,
            hatrac_template=f"/hatrac/{name}/{{{{{{MD5}}}}}}.{{{{{{Filename}}}}}}",
            column_defs=list(metadata_columns),
            fkey_defs=[_fkey(*fk) for fk in fkeys],
            comment=comment,
        )
    )
    doc["annotations"] = {**(doc.get("annotations") or {}), **_asset_annotations(schema, name, metadata_columns)}
    return doc


def _asset_annotations(schema: str, name: str, metadata_columns: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """DerivaML's ``asset_annotation``, with the constraint names the catalog really has (1.30
    names them ``MLTable.<table>_...``, which Chaise cannot find)."""
    types = {
        "source": [
            {"inbound": [schema, f"{name}_Asset_Type_{name}_fkey"]},
            {"outbound": [schema, f"{name}_Asset_Type_Asset_Type_fkey"]},
            "RID",
        ],
        "markdown_name": "Asset Types",
    }
    creator, modifier = [schema, f"{name}_RCB_fkey"], [schema, f"{name}_RMB_fkey"]
    metadata = [c["name"] for c in metadata_columns]
    return {
        _TD: {"row_name": {"row_markdown_pattern": "{{{Filename}}}"}},
        _VC: {
            "*": [
                "RID",
                "RCT",
                "RMT",
                creator,
                modifier,
                "URL",
                "Filename",
                "Description",
                "Length",
                "MD5",
                *metadata,
                types,
            ],
            "detailed": [
                "RID",
                "Filename",
                "Description",
                *metadata,
                types,
                "URL",
                "Length",
                "MD5",
                "RCT",
                "RMT",
                creator,
                modifier,
            ],
            "filter": {
                "and": [
                    {"source": "RID"},
                    {"source": "Filename"},
                    {"source": "Description"},
                    types,
                    {"source": [{"outbound": creator}, "RID"], "markdown_name": "Created By"},
                    {"source": [{"outbound": modifier}, "RID"], "markdown_name": "Modified By"},
                ]
            },
        },
    }


def asset_association_tables(schema: str, name: str, ml_schema: str = ML_SCHEMA) -> list[dict[str, Any]]:
    """``<Asset>_Asset_Type`` and ``<Asset>_Execution`` for asset table ``schema:name``."""
    return [
        association_table(
            f"{name}_Asset_Type",
            (name, schema, name, "RID"),
            ("Asset_Type", ml_schema, "Asset_Type", "Name"),
        ),
        association_table(
            f"{name}_Execution",
            (name, schema, name, "RID"),
            ("Execution", ml_schema, "Execution", "RID"),
            extra=[column("Asset_Role", "text", nullok=False)],  # required, as upstream
            extra_fkeys=[(["Asset_Role"], ml_schema, "Asset_Role", ["Name"])],
        ),
    ]


def public_schema_tables() -> list[dict[str, Any]]:
    """``public.ERMrest_Client``, which the system columns RCB and RMB reference on every server."""
    return [
        plain_table(
            "ERMrest_Client",
            [
                column("ID", "text", nullok=False),
                column("Display_Name", "text"),
                column("Full_Name", "text"),
                column("Email", "text"),
                column("Client_Object", "jsonb"),
            ],
            keys=[("ID",)],
        )
    ]


def ml_schema_tables(s: str = ML_SCHEMA) -> list[dict[str, Any]]:
    """Every table of a new ``deriva-ml`` schema, in creation order."""
    tables: list[dict[str, Any]] = [vocabulary_table(v.value, s) for v in MLVocab]
    tables += [
        plain_table(
            "Workflow",
            [
                column("Name", "text"),
                column("Description", "markdown"),
                column("URL", "ermrest_uri"),
                column("Checksum", "text"),
                column("Version", "text"),
            ],
            comment="A program whose runs are executions: its source URL at a commit and checksum.",
        ),
        association_table(
            "Workflow_Workflow_Type",
            ("Workflow", s, "Workflow", "RID"),
            ("Workflow_Type", s, "Workflow_Type", "Name"),
        ),
        plain_table(
            "Execution",
            [
                column("Workflow", "text"),
                column("Description", "markdown"),
                column("Duration", "text"),
                column("Status", "text"),
                column("Status_Detail", "text"),
            ],
            fkeys=[(["Workflow"], s, "Workflow", ["RID"])],
            comment="One run of a workflow.",
        ),
        plain_table(
            "Execution_Execution",
            [
                column("Execution", "text", nullok=False),
                column("Nested_Execution", "text", nullok=False),
                column("Sequence", "int4"),
            ],
            keys=[("Execution", "Nested_Execution")],
            fkeys=[
                (["Execution"], s, "Execution", ["RID"]),
                (["Nested_Execution"], s, "Execution", ["RID"]),
            ],
            comment="Nesting of executions: a parent (Execution) and its child (Nested_Execution).",
            cascade=True,
        ),
        plain_table(
            "Dataset",
            [column("Description", "markdown"), column("Deleted", "boolean"), column("Version", "text")],
            fkeys=[(["Version"], s, "Dataset_Version", ["RID"])],
        ),
        plain_table(
            "Dataset_Version",
            [
                column("Version", "text", default="0.1.0"),
                column("Description", "markdown"),
                column("Dataset", "text"),
                column("Execution", "text"),
                column("Minid", "text"),
                column("Minid_Spec_Hash", "text"),
                column("Snapshot", "text"),
            ],
            keys=[("Dataset", "Version")],
            fkeys=[(["Dataset"], s, "Dataset", ["RID"]), (["Execution"], s, "Execution", ["RID"])],
        ),
        association_table(
            "Dataset_Dataset_Type",
            ("Dataset", s, "Dataset", "RID"),
            ("Dataset_Type", s, "Dataset_Type", "Name"),
        ),
        association_table(
            "Dataset_Dataset",
            ("Dataset", s, "Dataset", "RID"),
            ("Nested_Dataset", s, "Dataset", "RID"),
        ),
        association_table(
            "Dataset_Execution",
            ("Dataset", s, "Dataset", "RID"),
            ("Execution", s, "Execution", "RID"),
        ),
    ]
    for asset in MLAsset:
        tables.append(asset_table(s, asset.value))
        tables += asset_association_tables(s, asset.value, s)
    tables.append(association_table("Dataset_File", ("Dataset", s, "Dataset", "RID"), ("File", s, "File", "RID")))
    annotations = _ml_annotations(s)
    for t in tables:
        # A new dict: deriva's Table.define hands every table the same default annotations dict.
        t["annotations"] = {**(t.get("annotations") or {}), **annotations.get(t["table_name"], {})}
    return tables


_VC = "tag:isrd.isi.edu,2016:visible-columns"
_VFK = "tag:isrd.isi.edu,2016:visible-foreign-keys"
_TD = "tag:isrd.isi.edu,2016:table-display"
_NEWEST_FIRST = {"*": {"row_order": [{"column": "RCT", "descending": True}]}}


def _path(s: str, *steps: tuple[str, str], end: str = "RID") -> list[Any]:
    return [{direction: [s, fkey]} for direction, fkey in steps] + [end]


def _ml_annotations(s: str) -> dict[str, dict[str, Any]]:
    """Chaise display annotations of the ``deriva-ml`` tables, as DerivaML 1.30 sets them (asset
    tables get theirs from :func:`asset_table`): readable sections such as Parent and Child
    Executions on a record page, newest rows first."""

    def via(assoc: str, here: str, there: str, name: str) -> dict[str, Any]:
        return {
            "source": _path(s, ("inbound", f"{assoc}_{here}_fkey"), ("outbound", f"{assoc}_{there}_fkey")),
            "markdown_name": name,
        }

    return {
        "Workflow": {
            _TD: _NEWEST_FIRST,
            _VC: {
                "*": ["RID", "Name", [s, "Workflow_RCB_fkey"], "RCT", "Description", "Version"],
                "detailed": [
                    "RID",
                    "Name",
                    "Description",
                    via("Workflow_Workflow_Type", "Workflow", "Workflow_Type", "Workflow Types"),
                    {"display": {"markdown_pattern": "[{{{URL}}}]({{{URL}}})"}, "markdown_name": "URL"},
                    "Checksum",
                    "Version",
                    [s, "Workflow_RCB_fkey"],
                    [s, "Workflow_RMB_fkey"],
                ],
            },
        },
        "Execution": {
            _TD: _NEWEST_FIRST,
            _VC: {
                "*": [
                    "RID",
                    [s, "Execution_RCB_fkey"],
                    [s, "Execution_RMB_fkey"],
                    "RCT",
                    "Description",
                    {"source": _path(s, ("outbound", "Execution_Workflow_fkey"))},
                    "Duration",
                    "Status",
                    "Status_Detail",
                ]
            },
            _VFK: {
                "detailed": [
                    via("Execution_Execution", "Nested_Execution", "Execution", "Parent Executions"),
                    via("Execution_Execution", "Execution", "Nested_Execution", "Child Executions"),
                    via("Dataset_Execution", "Execution", "Dataset", "Dataset"),
                    via("Execution_Asset_Execution", "Execution", "Execution_Asset", "Execution Asset"),
                    via("Execution_Metadata_Execution", "Execution", "Execution_Metadata", "Execution Metadata"),
                ]
            },
        },
        "Dataset": {
            _VC: {
                "*": [
                    "RID",
                    "Description",
                    [s, "Dataset_RCB_fkey"],
                    [s, "Dataset_RMB_fkey"],
                    {
                        "source": _path(s, ("outbound", "Dataset_Version_fkey"), end="Version"),
                        "markdown_name": "Dataset Version",
                    },
                ],
                "detailed": [
                    "RID",
                    "Description",
                    via("Dataset_Dataset_Type", "Dataset", "Dataset_Type", "Dataset Types"),
                    {
                        "source": _path(s, ("outbound", "Dataset_Version_fkey"), end="Version"),
                        "markdown_name": "Dataset Version",
                    },
                    [s, "Dataset_RCB_fkey"],
                    [s, "Dataset_RMB_fkey"],
                ],
            },
            _VFK: {
                "detailed": [
                    {
                        "source": _path(s, ("inbound", "Dataset_Version_Dataset_fkey")),
                        "markdown_name": "Previous Versions",
                    },
                    via("Dataset_Dataset", "Nested_Dataset", "Dataset", "Parent Datasets"),
                    via("Dataset_Dataset", "Dataset", "Nested_Dataset", "Child Datasets"),
                ]
            },
        },
        "Dataset_Version": {
            _VC: {
                "*": [
                    "RID",
                    "RCT",
                    "RMT",
                    [s, "Dataset_Version_RCB_fkey"],
                    [s, "Dataset_Version_RMB_fkey"],
                    {"source": _path(s, ("outbound", "Dataset_Version_Dataset_fkey"))},
                    "Description",
                    "Version",
                    "Minid",
                    {"source": _path(s, ("outbound", "Dataset_Version_Execution_fkey"))},
                ]
            },
            _VFK: {"*": []},
            _TD: {
                "row_name": {
                    "row_markdown_pattern": "{{{$fkey_%s_Dataset_Version_Dataset_fkey.RID}}}:{{{Version}}}" % s  # noqa: UP031
                }
            },
        },
    }


def schema_annotations(s: str = ML_SCHEMA) -> dict[str, Any]:
    """Annotations of the ``deriva-ml`` schema: names with underscores shown as spaces.

    Upstream stores this under a bare ``name_style`` key, which Chaise ignores; here it is under
    the display tag Chaise reads."""
    return {"tag:misd.isi.edu,2015:display": {"name_style": {"underline_space": True}}}


def extra_schemas() -> dict[str, list[dict[str, Any]]]:
    """Schemas besides ``deriva-ml`` that a DerivaML catalog has, with their tables: ``WWW``
    (``Page``: Title, markdown Content; ``File``: assets of a page), as deriva-py's
    ``configure_baseline_catalog`` makes it for DerivaML's ``create_ml_catalog``."""
    www = _em().Schema.define_www("WWW")
    return {"WWW": [dict(www["tables"][name]) for name in ("Page", "File")]}


#: The schema of pytest-deriva's own tables (outside ``deriva-ml``, which stays DerivaML's).
INDEX_SCHEMA = "pytest-deriva"


#: The tables of the run index (:func:`index_tables`).
INDEX_TABLE_NAMES = ("Execution_Parameter", "Execution_Metric")


def index_tables(ml_schema: str = ML_SCHEMA) -> list[dict[str, Any]]:
    """The run index: each execution's parameters and metrics, one row per name, written when a
    run is recorded so that runs are found and compared without reading a file per run (the
    files, ``hydra-*-config.yaml`` and ``metrics.json``, stay as DerivaML reads them)."""
    fkeys: list[tuple[Sequence[str], str, str, Sequence[str]]] = [(["Execution"], ml_schema, "Execution", ["RID"])]
    return [
        plain_table(
            INDEX_TABLE_NAMES[0],
            [
                column("Execution", "text", nullok=False),
                column("Name", "text", nullok=False, comment="dotted path in the run's configuration, e.g. model.lr"),
                column("Value", "jsonb", comment="the value as recorded"),
            ],
            keys=[("Execution", "Name")],
            fkeys=fkeys,
            comment="Parameters of an execution (its Hydra configuration, flattened).",
            cascade=True,
        ),
        plain_table(
            INDEX_TABLE_NAMES[1],
            [
                column("Execution", "text", nullok=False),
                column("Name", "text", nullok=False, comment="dotted path in metrics.json, e.g. per_class.0"),
                column("Value", "float8", comment="the number; null when it is not a finite number"),
                column("Text", "text", comment="the value as text when it is not a finite number (NaN, a string)"),
            ],
            keys=[("Execution", "Name")],
            fkeys=fkeys,
            comment="Metrics an execution returned (metrics.json, flattened).",
            cascade=True,
        ),
    ]


#: The embedded store's record of what ``pytest-deriva push`` copied where (see tools/push.py).
PUSH_TABLE = "Pushed_Row"


def push_table() -> dict[str, Any]:
    """One row per row a push copied to a server catalog: its RID here and there. An execution's
    row is ``Complete`` once everything it references is on the server too."""
    return plain_table(
        PUSH_TABLE,
        [
            column("Target", "text", nullok=False, comment="the server catalog: host/catalog id"),
            column("Local_RID", "text", nullok=False),
            column("Target_RID", "text", nullok=False, comment="the row's RID on the server"),
            column("Table", "text", nullok=False, comment="schema:table"),
            column("Complete", "boolean", comment="an execution: its files, links and index are on the server"),
        ],
        keys=[("Target", "Local_RID")],
        comment="Rows pytest-deriva push copied to a DERIVA server, and their RIDs there.",
    )


#: A server catalog's record of the rows ``pytest-deriva push`` made there and where they came from.
PUSH_ORIGIN_TABLE = "Push_Origin"


def push_origin_table() -> dict[str, Any]:
    """One row per row a push made on this (server) catalog: the store and RID it came from, and the
    RID it has here, reserved before the row is inserted (so a push that stops finds it again)."""
    return plain_table(
        PUSH_ORIGIN_TABLE,
        [
            column("Source", "text", nullok=False, comment="the embedded store the row was recorded in (its id)"),
            column("Source_RID", "text", nullok=False, comment="the row's RID there"),
            column("Target_RID", "text", nullok=False, comment="the row's RID here"),
            column("Table", "text", nullok=False, comment="schema:table"),
        ],
        keys=[("Source", "Source_RID"), ("Target_RID",)],
        comment="Rows pytest-deriva push copied here from a catalog recorded offline.",
    )


#: ``chaise-config`` brand of the baseline deriva-py gives a new catalog (replaced by ours).
_BASELINE_BRAND = "DERIVA"
#: ``chaise-config`` brand of the catalog annotation below (DerivaML's ``apply_catalog_annotations``).
ML_BRAND = "ML Data Browser"


def catalog_annotations(catalog_id: str, model: Model) -> dict[str, Any]:
    """The catalog's Chaise annotations as DerivaML's ``apply_catalog_annotations`` makes them: a
    navbar of the ``deriva-ml`` tables, ``WWW``, each domain schema's tables, the vocabularies,
    assets and features, and Dataset as the default table."""

    def link(schema: str, table: str, name: str | None = None) -> dict[str, str]:
        return {"name": name or table, "url": f"/chaise/recordset/#{catalog_id}/{schema}:{table}"}

    domain = sorted(n for n in model.schemas if n not in (ML_SCHEMA, "public", "WWW"))
    vocab: list[dict[str, Any]] = [{"name": f"{ML_SCHEMA} Vocabularies", "header": True}]
    vocab += [link(ML_SCHEMA, t.name) for t in model.vocabularies() if t.schema.name == ML_SCHEMA]
    assets = [link(ML_SCHEMA, t.name) for t in model.asset_tables() if t.schema.name == ML_SCHEMA]
    features: list[dict[str, str]] = []
    domain_menus = []
    for name in domain:
        tables = model.schemas[name].tables.values()
        plain = [link(name, t.name) for t in tables if not (model.is_vocabulary(t) or model.is_association(t))]
        if plain:
            domain_menus.append({"name": name, "children": plain})
        vocabularies = [link(name, t.name) for t in tables if model.is_vocabulary(t)]
        if vocabularies:
            vocab += [{"name": f"{name} Vocabularies", "header": True}, *vocabularies]
        assets += [link(name, t.name) for t in tables if model.is_asset(t)]
        features += [link(name, t.name) for t in tables if "Feature_Name" in t.columns and "Execution" in t.columns]
    menu = [
        {
            "name": "User Info",
            "children": [link("public", "ERMrest_Client", "Users"), link("public", "ERMrest_Group", "Groups")],
        },
        {
            "name": "Deriva-ML",
            "children": [
                link(ML_SCHEMA, t, t.replace("_", " "))
                for t in (
                    "Workflow",
                    "Execution",
                    "Execution_Metadata",
                    "Execution_Asset",
                    "Dataset",
                    "Dataset_Version",
                )
            ],
        },
        {"name": "WWW", "children": [link("WWW", "Page"), link("WWW", "File")]},
        *domain_menus,
        {"name": "Vocabulary", "children": vocab},
        {"name": "Assets", "children": assets},
    ]
    if features:
        menu.append({"name": "Features", "children": features})
    return {
        "tag:misd.isi.edu,2015:display": {"name_style": {"underline_space": True}},
        "tag:isrd.isi.edu,2019:chaise-config": {
            "headTitle": "Catalog ML",
            "navbarBrandText": ML_BRAND,
            "systemColumnsDisplayEntry": ["RID"],
            "systemColumnsDisplayCompact": ["RID"],
            "defaultTable": {"table": "Dataset", "schema": ML_SCHEMA},
            "deleteRecord": True,
            "showFaceting": True,
            "shareCiteAcls": True,
            "resolverImplicitCatalog": False,
            "navbarMenu": {"newTab": False, "children": menu},
        },
    }


def replaces_catalog_annotations(present: dict[str, Any]) -> bool:
    """Whether a catalog's Chaise config is one ours may replace: none, deriva-py's baseline, or ours."""
    config = present.get("tag:isrd.isi.edu,2019:chaise-config")
    return config is None or config.get("navbarBrandText") in (_BASELINE_BRAND, ML_BRAND)
