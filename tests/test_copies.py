"""An uploaded photo already in the catalog is named as such, by hash or by image vector."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
from PIL import Image

from core.copies import SAME_PHOTO_COSINE, catalog_copies
from core.query import NewItem
from core.store import Store


def test_the_same_photo_file_is_found_by_its_hash(demo_store: Store) -> None:
    row = demo_store.postings().iloc[7]
    item = NewItem(image=Path(row["image_path"]).read_bytes(), name="again.jpg")

    copies = catalog_copies(demo_store, item)

    assert row["posting_id"] in [c.posting_id for c in copies]
    assert {c.evidence for c in copies} == {"identical perceptual hash"}
    # Every posting named holds exactly this hash.
    hashes = demo_store.postings().set_index("posting_id")["image_phash"]
    assert {hashes[c.posting_id] for c in copies} == {row["image_phash"]}


def test_a_new_photo_and_a_typed_title_are_not_copies(demo_store: Store) -> None:
    picture = io.BytesIO()
    Image.new("RGB", (200, 200), (10, 200, 30)).save(picture, format="JPEG")
    hashes = set(demo_store.postings()["image_phash"])
    item = NewItem(image=picture.getvalue(), name="green.jpg")
    assert f"{item.image_hash():016x}" not in hashes  # the premise: nothing shares its hash

    assert catalog_copies(demo_store, item) == []
    assert catalog_copies(demo_store, NewItem(title="kaos polos hitam")) == []


def test_a_near_identical_image_vector_in_the_results_counts(demo_store: Store) -> None:
    picture = io.BytesIO()
    Image.new("RGB", (200, 200), (10, 200, 30)).save(picture, format="JPEG")
    item = NewItem(image=picture.getvalue(), name="green.jpg")
    results = pd.DataFrame(
        {"posting_id": ["demo_000001", "demo_000002"], "image_cosine": [0.999, 0.97]}
    )

    copies = catalog_copies(demo_store, item, [results])

    assert [c.posting_id for c in copies] == ["demo_000001"]
    assert copies[0].evidence == "image cosine 0.999"
    assert 0.97 < SAME_PHOTO_COSINE
