"""Setting a catalog up for DerivaML: ``pytest-deriva catalog init``.

:func:`init_catalog` creates what is missing - the ``deriva-ml`` schema, its tables, the seeded
vocabulary terms, the display annotations Chaise reads - and nothing else: it never drops or
changes what is there, so it is safe to run again, on a catalog DerivaML's own
``create_ml_catalog`` made, or on one a run of ours is writing to. It returns what it did, one
line per action, for the command to print. The same function sets up a new embedded catalog.
"""

from __future__ import annotations

from typing import Any

from pytest_deriva.catalog import schema as ddl
from pytest_deriva.catalog.port import CatalogPort
from pytest_deriva.exceptions import DerivaMLConfigurationError

__all__ = ["ensure_index", "init_catalog", "require_ml_schema"]


def require_ml_schema(catalog: CatalogPort, ml_schema: str = ddl.ML_SCHEMA) -> None:
    """Make sure the catalog has the ML schema: create it where that is done on first use (a new
    embedded catalog), otherwise refuse with the command that sets it up."""
    if ml_schema in catalog.model.schemas:
        return
    if catalog.creates_on_demand:
        init_catalog(catalog, ml_schema)
        return
    if ml_schema in catalog.refresh_model().schemas:
        return
    raise DerivaMLConfigurationError(
        f"Catalog {catalog.uri} has no {ml_schema!r} schema. Set it up with: pytest-deriva catalog init {catalog.uri}"
    )


def init_catalog(catalog: CatalogPort, ml_schema: str = ddl.ML_SCHEMA) -> list[str]:
    """Create the ML schema, tables, terms and annotations the catalog lacks; what was done."""
    done: list[str] = []
    with catalog.transaction():
        model = catalog.refresh_model()
        if "public" not in model.schemas:  # a server has it already; a new folder does not
            catalog.create_tables("public", ddl.public_schema_tables())
            done.append("created schema public (ERMrest_Client)")
        elif "ERMrest_Client" not in model.schemas["public"].tables:
            catalog.create_tables("public", ddl.public_schema_tables())
            done.append("created table public:ERMrest_Client")
        wanted = ddl.ml_schema_tables(ml_schema)
        if ml_schema not in model.schemas:
            catalog.create_tables(ml_schema, wanted)
            catalog.set_annotations(ml_schema, None, ddl.schema_annotations(ml_schema))
            done.append(f"created schema {ml_schema} with {len(wanted)} tables")
        else:
            have = model.schemas[ml_schema].tables
            missing = [t for t in wanted if t["table_name"] not in have]
            if missing:
                catalog.create_tables(ml_schema, missing)
                done += [f"created table {ml_schema}:{t['table_name']}" for t in missing]
            done += _missing_annotations(catalog, ml_schema, wanted, have)
        for name, doc in ddl.extra_schemas().items():
            if name not in catalog.refresh_model().schemas:
                catalog.create_tables(name, doc)
                done.append(f"created schema {name}")
        # The run index: here on a server, which makes nothing on demand. An embedded store makes
        # it when a run first writes to it, so a store's layout stays what its format version says
        # until then (the format migrations compare layouts; see catalog/_migrations.py).
        done += ensure_index(catalog, ml_schema, create=not catalog.creates_on_demand)
        if not catalog.creates_on_demand:  # a server: where pushes record where rows came from
            have = catalog.refresh_model().schemas[ddl.INDEX_SCHEMA].tables
            if ddl.PUSH_ORIGIN_TABLE not in have:
                catalog.create_tables(ddl.INDEX_SCHEMA, [ddl.push_origin_table()])
                done.append(f"created table {ddl.INDEX_SCHEMA}:{ddl.PUSH_ORIGIN_TABLE}")
        model = catalog.refresh_model()
        if ddl.replaces_catalog_annotations(model.doc.get("annotations") or {}):
            wanted_catalog = ddl.catalog_annotations(catalog.catalog_id, model)
            present = model.doc.get("annotations") or {}
            if any(present.get(k) != v for k, v in wanted_catalog.items()):
                catalog.set_annotations(None, None, wanted_catalog)
                done.append("set the catalog's Chaise navbar and display annotations")
        for vocab, terms in ddl.SEED_TERMS.items():
            if not terms:
                continue
            added = catalog.insert(
                ml_schema, vocab, [{"Name": n, "Description": d} for n, d in terms], on_conflict_skip=True
            )
            if added:
                done.append(f"added {len(added)} {vocab} terms: {', '.join(r['Name'] for r in added)}")
    return done


def _missing_annotations(
    catalog: CatalogPort, ml_schema: str, wanted: list[dict[str, Any]], have: dict[str, Any]
) -> list[str]:
    """Annotations our tables carry that the catalog's copies lack (none is replaced)."""
    done: list[str] = []
    for doc in wanted:
        table = have.get(doc["table_name"])
        if table is None:
            continue
        present = table.doc.get("annotations") or {}
        add = {k: v for k, v in (doc.get("annotations") or {}).items() if k not in present}
        if add:
            catalog.set_annotations(ml_schema, doc["table_name"], add)
            done.append(f"annotated {ml_schema}:{doc['table_name']} ({len(add)} annotations)")
    return done


def ensure_index(catalog: CatalogPort, ml_schema: str = ddl.ML_SCHEMA, *, create: bool = False) -> list[str]:
    """Create the run index (:func:`~pytest_deriva.catalog.schema.index_tables`) where it is
    missing and ``create`` is set; what was done. ``catalog init`` adds it to a catalog set up
    before it existed; runs recorded without it are read from their files."""
    missing = _missing_index(catalog.model, ml_schema)
    if missing and create:
        missing = _missing_index(catalog.refresh_model(), ml_schema)  # another process may have made it
    if not missing or not create:
        return []
    catalog.create_tables(ddl.INDEX_SCHEMA, missing)
    return [f"created table {ddl.INDEX_SCHEMA}:{t['table_name']}" for t in missing]


def _missing_index(model: Any, ml_schema: str) -> list[dict[str, Any]]:
    have = model.schemas[ddl.INDEX_SCHEMA].tables if ddl.INDEX_SCHEMA in model.schemas else {}
    if set(ddl.INDEX_TABLE_NAMES) <= set(have):
        return []  # the common case, decided without building the definitions (which import deriva)
    return [t for t in ddl.index_tables(ml_schema) if t["table_name"] not in have]
