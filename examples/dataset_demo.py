"""A versioned dataset of digit images with labels as a feature, and an execution that reads it.

1. An ingest execution stores 50 of scikit-learn's bundled 8x8 digit images as ``.npy`` files in a
   domain asset table ``Image``.
2. A labeling execution records each image's digit as the feature ``Digit_Label`` (a term of the
   vocabulary ``Digit``) and builds a dataset: ``Complete`` with nested ``Training`` (40 images)
   and ``Testing`` (10). Feature values reach the catalog when the execution uploads; then the
   dataset is released as version 1.0.0, which pins the images and their labels.
3. A training execution is configured with that version: it gets the dataset's bag (a BDBag,
   materialized and validated), fits a nearest-centroid classifier on the training images and
   scores it on the test images, and records the metrics.

Run it with ``python examples/dataset_demo.py`` (scikit-learn installed; ``make demo`` installs
it). Everything is recorded in the embedded catalog ``.deriva/`` at the project root.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
from sklearn.datasets import load_digits

from pytest_deriva import DatasetSpec, DerivaML, DerivaMLNotFoundError, Execution, ExecutionConfiguration
from pytest_deriva.catalog.schema import column

N_IMAGES = 50
N_TRAIN = 40


def set_up_schema(ml: DerivaML) -> None:
    """The Image asset table, the Digit vocabulary and the Digit_Label feature (once per catalog)."""
    if not ml.model.has_table("Image"):
        ml.create_asset(
            "Image", column_defs=[column("Width", "int4"), column("Height", "int4")], comment="A digit image."
        )
    if not ml.model.has_table("Digit"):
        ml.create_vocabulary("Digit", "The digits 0 to 9.")
        for d in range(10):
            ml.add_term("Digit", str(d), f"The digit {d}.")
    ml.add_dataset_element_type("Image")
    try:
        ml.lookup_feature("Image", "Digit_Label")
    except DerivaMLNotFoundError:
        ml.create_feature("Image", "Digit_Label", terms=["Digit"], comment="The digit an image shows.")


def main() -> int:
    ml = DerivaML()  # the embedded catalog in .deriva/ at the project root
    set_up_schema(ml)
    workflow = ml.create_workflow(
        "digits-dataset-demo",
        ["Ingest", "Feature_Creation", "Training"],
        description="Digits as a versioned dataset with labels, and a classifier trained on it",
    )
    x, y = load_digits(return_X_y=True)
    x, y = x[:N_IMAGES].reshape(-1, 8, 8), y[:N_IMAGES]

    # 1. Ingest: the images become rows of Image (files in the object store).
    ingest = ml.create_execution(ExecutionConfiguration(workflow=workflow, description="Ingest 50 digit images"))
    with ingest:
        for i, image in enumerate(x):
            path = ingest.asset_file_path("Image", f"digit_{i:03d}.npy", Width=8, Height=8)
            with path.open("wb") as f:
                np.save(f, image.astype(np.uint8))
    uploaded = ingest.upload_execution_outputs()
    rid_of = {p.file_name: p.asset_rid for p in uploaded[f"{ml.default_schema}/Image"]}
    image_rids = [rid_of[f"digit_{i:03d}.npy"] for i in range(N_IMAGES)]

    # 2. Labels as a feature, and the dataset, made by the labeling execution.
    label = ml.create_execution(ExecutionConfiguration(workflow=workflow, description="Label the digit images"))
    with label:
        DigitLabel = ml.feature_record_class("Image", "Digit_Label")
        label.add_features([DigitLabel(Image=rid, Digit=str(d)) for rid, d in zip(image_rids, y, strict=True)])
        train = label.create_dataset("Training", description=f"The first {N_TRAIN} digit images")
        train.add_dataset_members({"Image": image_rids[:N_TRAIN]})
        test = label.create_dataset("Testing", description=f"The last {N_IMAGES - N_TRAIN} digit images")
        test.add_dataset_members({"Image": image_rids[N_TRAIN:]})
        full = label.create_dataset(["Complete", "Labeled"], description="50 labeled digit images")
        full.add_dataset_members({"Dataset": [train.rid, test.rid]})
    label.upload_execution_outputs()  # the labels are in the catalog from here on
    release = full.increment_dataset_version("major", "Images with their labels", execution_rid=label.execution_rid)

    # 3. Training on the released version, read from its bag.
    config = ExecutionConfiguration(
        workflow=workflow,
        datasets=[DatasetSpec(rid=full.rid, version=str(release), materialize=True)],
        description="Nearest-centroid classifier on the digits dataset",
    )
    training = ml.create_execution(config)
    with training:
        metrics = train_and_score(training)
        training.asset_file_path("Execution_Asset", "metrics.json").write_text(json.dumps(metrics, indent=2))
    training.upload_execution_outputs()

    show(ml, full.rid, training.execution_rid, metrics)
    return 0


def train_and_score(execution: Execution) -> dict[str, Any]:
    """A DerivaML model function body: everything comes from the execution's dataset bag."""
    bag = execution.datasets[0]
    labels = {v["Image"]: int(v["Digit"]) for v in bag.list_feature_values("Image", "Digit_Label")}
    parts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for child in bag.list_dataset_children():
        rows = child.list_dataset_members()["Image"]
        pixels = np.stack([np.load(bag.asset_path(r)).ravel() for r in rows]).astype(float)
        parts[child.dataset_types[0]] = (pixels, np.array([labels[r["RID"]] for r in rows]))
    (x_train, y_train), (x_test, y_test) = parts["Training"], parts["Testing"]
    classes = np.unique(y_train)
    centroids = np.stack([x_train[y_train == c].mean(axis=0) for c in classes])
    predicted = classes[np.argmin(((x_test[:, None, :] - centroids[None]) ** 2).sum(axis=2), axis=1)]
    return {
        "dataset": bag.dataset_rid,
        "version": str(bag.version),
        "train_images": len(y_train),
        "test_images": len(y_test),
        "accuracy": float((predicted == y_test).mean()),
    }


def show(ml: DerivaML, dataset_rid: str, execution_rid: str, metrics: dict[str, Any]) -> None:
    """Print the dataset's history and what the training execution recorded."""
    ds = ml.lookup_dataset(dataset_rid)
    print(f"Catalog:  {ml.catalog.uri}")
    print(f"Dataset:  {ds.rid}  {ds.description!r}  types {ds.dataset_types}  version {ds.version}")
    for h in ds.dataset_history():
        print(f"  {h.dataset_version!s:<7} snapshot {h.snapshot:<6} {h.description}")
    for child in ds.list_dataset_children():
        count = len(child.list_dataset_members()["Image"])
        print(f"  nested {child.rid}  {child.dataset_types}  {count} images")
    record = ml.lookup_execution(execution_rid)
    print(f"Training: {record.rid}  {record.status.value}  {record.duration}")
    for d in record.list_input_datasets():
        print(f"  input dataset {d.rid}  {d.description!r}")
    bag = ml.download_dataset_bag(DatasetSpec(rid=dataset_rid, version=metrics["version"]))
    bag.validate()
    print(f"  bag {bag.path}  (cached: {bag.from_cache}, valid)")
    for asset in record.list_assets(asset_role="Output"):
        print(f"  output {asset.asset_table}/{asset.filename}  {asset.length} B  md5 {asset.md5}")
    print(f"Accuracy on the test images: {metrics['accuracy']:.2f}")


if __name__ == "__main__":
    sys.exit(main())
