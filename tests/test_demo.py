"""The built-in demo catalog: layout, determinism, realism and caching."""

from __future__ import annotations

import csv
import os
import re
from collections import defaultdict
from itertools import combinations
from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image

from core.demo import (
    CSV_COLUMNS,
    DEMO_VERSION,
    build_demo_catalog,
    ensure_demo_catalog,
    plan_demo_products,
    vocabulary,
)
from core.demo import build as demo_build

SMALL_PRODUCTS = 20
SMALL_IMAGE_SIZE = 160
SEED = 7


def read_rows(catalog: Path) -> list[dict[str, str]]:
    with catalog.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def groups_of(rows: list[dict[str, str]]) -> dict[int, list[dict[str, str]]]:
    groups: dict[int, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        groups[int(row["label_group"])].append(row)
    return groups


def image_bytes(catalog: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in (catalog.parent / "images").iterdir()}


def mean_phash_distances(rows: list[dict[str, str]]) -> tuple[float, float]:
    """Mean Hamming distance of the CSV's phashes within label groups and between them."""
    hashes = np.array([int(row["image_phash"], 16) for row in rows], dtype=np.uint64)
    labels = np.array([int(row["label_group"]) for row in rows])
    xor = (hashes[:, None] ^ hashes[None, :]).view(np.uint8).reshape(len(rows), len(rows), 8)
    distances = np.unpackbits(xor, axis=2).sum(axis=2)
    same = labels[:, None] == labels[None, :]
    np.fill_diagonal(same, False)
    different = labels[:, None] != labels[None, :]
    return float(distances[same].mean()), float(distances[different].mean())


@pytest.fixture(scope="module")
def small_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("small") / "demo"
    return build_demo_catalog(
        target, n_products=SMALL_PRODUCTS, seed=SEED, image_size=SMALL_IMAGE_SIZE
    )


@pytest.fixture(scope="module")
def small_rows(small_catalog: Path) -> list[dict[str, str]]:
    return read_rows(small_catalog)


def test_same_seed_gives_identical_files_and_other_seed_differs(tmp_path: Path) -> None:
    first = build_demo_catalog(tmp_path / "a", n_products=12, seed=3, image_size=96)
    second = build_demo_catalog(tmp_path / "b", n_products=12, seed=3, image_size=96)
    other = build_demo_catalog(tmp_path / "c", n_products=12, seed=4, image_size=96)

    assert first.read_bytes() == second.read_bytes()
    assert image_bytes(first) == image_bytes(second)
    assert first.read_bytes() != other.read_bytes()
    assert image_bytes(first) != image_bytes(other)


def test_csv_has_shopee_layout(small_catalog: Path, small_rows: list[dict[str, str]]) -> None:
    with small_catalog.open(encoding="utf-8") as handle:
        assert handle.readline().strip() == ",".join(CSV_COLUMNS)
    posting_ids = [row["posting_id"] for row in small_rows]
    assert len(set(posting_ids)) == len(posting_ids)
    assert all(re.fullmatch(r"demo_\d{6}", posting_id) for posting_id in posting_ids)
    assert all(re.fullmatch(r"[0-9a-f]{16}", row["image_phash"]) for row in small_rows)
    assert all(row["title"].strip() and "\n" not in row["title"] for row in small_rows)
    assert len({int(row["label_group"]) for row in small_rows}) == SMALL_PRODUCTS


def test_every_product_is_posted_two_to_six_times(small_rows: list[dict[str, str]]) -> None:
    sizes = [len(rows) for rows in groups_of(small_rows).values()]
    assert min(sizes) >= 2
    assert max(sizes) <= 6


def test_images_exist_open_at_declared_size_and_match_their_phash(
    small_catalog: Path, small_rows: list[dict[str, str]]
) -> None:
    images = small_catalog.parent / "images"
    assert len(list(images.iterdir())) == len(small_rows)
    for row in small_rows:
        with Image.open(images / row["image"]) as image:
            assert image.format == "JPEG"
            assert image.mode == "RGB"
            assert image.size == (SMALL_IMAGE_SIZE, SMALL_IMAGE_SIZE)
            assert str(imagehash.phash(image)) == row["image_phash"]


def test_titles_vary_within_a_group_but_keep_the_brand(small_rows: list[dict[str, str]]) -> None:
    products = plan_demo_products(SMALL_PRODUCTS, SEED)
    brands = {product.label_group: product.brand for product in products}
    groups = groups_of(small_rows)
    varied = 0
    for label_group, rows in groups.items():
        titles = [row["title"] for row in rows]
        if len(set(titles)) == len(titles):
            varied += 1
        brand = brands[label_group].lower()
        assert all(brand in title.lower().split() for title in titles), titles
    assert varied >= 0.8 * len(groups)


def test_near_miss_distractors_exist(small_rows: list[dict[str, str]]) -> None:
    families: dict[tuple[str, str], set[int]] = defaultdict(set)
    for product in plan_demo_products(SMALL_PRODUCTS, SEED):
        families[(product.brand, product.category.key)].add(product.label_group)
    shared = [groups for groups in families.values() if len(groups) > 1]
    assert shared, "no two products share brand and category"
    posted = {int(row["label_group"]) for row in small_rows}
    assert all(groups <= posted for groups in shared)


def test_distractor_siblings_differ_in_exactly_one_attribute() -> None:
    products = plan_demo_products(150, 0)
    keys = {(p.brand, p.category.key, p.variant, p.size) for p in products}
    assert len(keys) == len(products)
    for first, second in combinations(products, 2):
        if (first.brand, first.category.key) == (second.brand, second.category.key):
            assert (first.variant == second.variant) != (first.size == second.size)


def test_some_titles_carry_literal_utf8_byte_escapes(small_rows: list[dict[str, str]]) -> None:
    escaped = [row["title"] for row in small_rows if re.search(r"\\x[0-9a-f]{2}", row["title"])]
    assert escaped
    assert any("\\xe2\\x9d\\xa4" in title or "\\xf0\\x9f" in title for title in escaped)


def test_imported_demo_titles_are_decoded_with_the_raw_title_kept(
    small_catalog: Path, small_rows: list[dict[str, str]], tmp_path: Path
) -> None:
    """The demo writes escapes into its CSV like real scraped data; the import decodes them
    (the same path as any catalog), so pages and word evidence show the emoji."""
    from core.catalog import import_catalog
    from core.store import Store

    escaped = {r["posting_id"]: r["title"] for r in small_rows if "\\x" in r["title"]}
    with Store(tmp_path / "demo.db") as store:
        import_catalog(store, small_catalog, small_catalog.parent / "images")
        stored = store.postings(["posting_id", "title", "raw_title"]).set_index("posting_id")

    assert escaped
    assert not stored["title"].str.contains(r"\\x[0-9a-f]{2}").any()
    assert stored["raw_title"].dropna().to_dict() == escaped
    for pid, raw in escaped.items():
        title = stored.at[pid, "title"]
        assert len(title) < len(raw) and any(ord(ch) > 0x2000 for ch in title)


def test_images_of_a_group_are_closer_than_images_of_different_groups(
    small_rows: list[dict[str, str]],
) -> None:
    within, between = mean_phash_distances(small_rows)
    assert within < 0.85 * between, (within, between)


def test_images_of_a_group_are_not_all_identical(small_rows: list[dict[str, str]]) -> None:
    for rows in groups_of(small_rows).values():
        assert len({row["image_phash"] for row in rows}) > 1 or len(rows) == 2


def test_progress_counts_up_to_the_number_of_postings(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    catalog = build_demo_catalog(
        tmp_path / "demo", n_products=5, image_size=64, progress=lambda *call: calls.append(call)
    )
    total = len(read_rows(catalog))
    assert calls[0] == (0, total)
    assert calls[-1] == (total, total)
    assert [done for done, _ in calls] == list(range(total + 1))


def test_an_interrupted_build_keeps_the_previous_catalog_and_leaves_no_debris(
    tmp_path: Path,
) -> None:
    target = tmp_path / "demo"
    catalog = build_demo_catalog(target, n_products=4, image_size=64)
    before = catalog.read_bytes()

    def interrupt(done: int, total: int) -> None:
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_demo_catalog(target, n_products=6, seed=1, image_size=64, progress=interrupt)
    assert catalog.read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["demo"]


def test_an_interrupted_first_build_leaves_nothing(tmp_path: Path) -> None:
    def interrupt(done: int, total: int) -> None:
        if done == 2:
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        build_demo_catalog(tmp_path / "demo", n_products=4, image_size=64, progress=interrupt)
    assert list(tmp_path.iterdir()) == []


def test_rejects_unusable_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        build_demo_catalog(tmp_path / "demo", n_products=0)
    with pytest.raises(ValueError):
        build_demo_catalog(tmp_path / "demo", n_products=vocabulary.MAX_PRODUCTS + 1)
    with pytest.raises(ValueError):
        build_demo_catalog(tmp_path / "demo", image_size=8)


@pytest.fixture
def small_default_build(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Make ensure_demo_catalog build a tiny catalog, and record where it builds."""
    built: list[Path] = []
    original = demo_build.build_demo_catalog

    def tiny_build(target_dir: Path, **kwargs: object) -> Path:
        built.append(target_dir)
        return original(target_dir, n_products=4, image_size=64)

    monkeypatch.setattr(demo_build, "build_demo_catalog", tiny_build)
    return built


def test_ensure_builds_once_then_reuses(tmp_path: Path, small_default_build: list[Path]) -> None:
    catalog = ensure_demo_catalog(tmp_path)
    assert catalog == tmp_path / "demo" / "catalog.csv"
    assert catalog.is_file()
    assert (tmp_path / "demo" / "VERSION").read_text().strip() == str(DEMO_VERSION)
    os.utime(catalog, ns=(1_000_000_000, 1_000_000_000))

    assert ensure_demo_catalog(tmp_path) == catalog
    assert len(small_default_build) == 1
    assert catalog.stat().st_mtime_ns == 1_000_000_000


def test_ensure_regenerates_when_version_differs(
    tmp_path: Path, small_default_build: list[Path]
) -> None:
    catalog = ensure_demo_catalog(tmp_path)
    (tmp_path / "demo" / "VERSION").write_text("0\n")
    os.utime(catalog, ns=(1_000_000_000, 1_000_000_000))

    assert ensure_demo_catalog(tmp_path) == catalog
    assert len(small_default_build) == 2
    assert catalog.stat().st_mtime_ns != 1_000_000_000
    assert (tmp_path / "demo" / "VERSION").read_text().strip() == str(DEMO_VERSION)


def test_ensure_regenerates_when_images_are_missing(
    tmp_path: Path, small_default_build: list[Path]
) -> None:
    ensure_demo_catalog(tmp_path)
    for image in (tmp_path / "demo" / "images").iterdir():
        image.unlink()
    (tmp_path / "demo" / "images").rmdir()

    ensure_demo_catalog(tmp_path)
    assert len(small_default_build) == 2
    assert any((tmp_path / "demo" / "images").iterdir())


@pytest.mark.slow
def test_default_catalog_size_and_image_similarity(tmp_path: Path) -> None:
    rows = read_rows(build_demo_catalog(tmp_path / "demo"))
    groups = groups_of(rows)
    assert len(groups) == 150
    assert 450 <= len(rows) <= 750
    within, between = mean_phash_distances(rows)
    assert within < 0.85 * between, (within, between)


def _photo_rule_figures(catalog: Path, images: Path, weights_dir: Path, db: Path) -> dict:
    """How the baseline's photo rule (MobileNet 0.25 cosine >= 0.85, the write-up's threshold)
    and the whole baseline see one labelled catalog: the share of pairs of different products
    and of one product at or above the threshold, and the precision of the baseline's pairs."""
    from core import matching
    from core.catalog import import_catalog
    from core.pipelines import get_pipeline
    from core.store import Store

    with Store(db) as store:
        import_catalog(store, catalog, images)
        settings = store.load_settings().replace(
            image_alpha=0.25, image_size=224, weights_dir=str(weights_dir)
        )
        matching.ensure_ready(store, "baseline", settings)
        ids, vectors = store.load_embeddings(
            get_pipeline("baseline").image_model(store, settings)[0]
        )
        labels = dict(zip(*store.postings(["posting_id", "label_group"]).values.T, strict=True))
        pairs = matching.run_pipeline(store, "baseline", settings, save=False).pairs
    group = np.array([labels[i] for i in ids])
    upper = np.triu_indices(len(ids), 1)
    alike = (vectors @ vectors.T)[upper] >= settings.baseline_image_cosine
    same = (group[:, None] == group[None, :])[upper]
    right = [labels[a] == labels[b] for a, b in zip(pairs["left"], pairs["right"], strict=True)]
    return {
        "different_alike": float(alike[~same].mean()),
        "same_alike": float(alike[same].mean()),
        "precision": float(np.mean(right)),
        "pairs": len(right),
        "ids": ids,
        "group": group,
        "alike": alike,
    }


@pytest.mark.tf
@pytest.mark.slow
def test_demo_products_are_told_apart_by_photos_about_as_well_as_real_ones(
    demo_catalog: Path, grocery_dir: Path, weights_dir: Path, tmp_path: Path
) -> None:
    # The first demo drew flat packages that all looked alike to an ImageNet network: 16 % of
    # the pairs of different products passed the photo rule (1 % on real grocery photos) and
    # 94 % of the baseline's 16,391 pairs were wrong. Measured against the real photos here
    # (now about 1.4 % against 1.0 %, and 21 % of the pairs right against 20 %).
    demo = _photo_rule_figures(
        demo_catalog, demo_catalog.parent / "images", weights_dir, tmp_path / "demo.db"
    )
    real = _photo_rule_figures(
        grocery_dir / "catalog.csv", grocery_dir / "images", weights_dir, tmp_path / "g.db"
    )
    assert demo["different_alike"] <= 2 * real["different_alike"], (demo, real)
    # The baseline's matches are about as often right as on real photos, not 6 % as before.
    assert demo["precision"] >= 0.75 * real["precision"], (demo["precision"], real["precision"])
    # Its known weakness stays visible: a product's postings mostly pass the photo rule, and
    # so do many pairs of siblings (one brand and category, another size or variant).
    family = {p.label_group: f"{p.brand}/{p.category.key}" for p in plan_demo_products()}
    families = np.array([family[int(g)] for g in demo["group"]])
    upper = np.triu_indices(len(demo["ids"]), 1)
    sibling = (families[upper[0]] == families[upper[1]]) & (
        demo["group"][upper[0]] != demo["group"][upper[1]]
    )
    assert demo["same_alike"] >= 0.5
    assert demo["alike"][sibling].mean() >= 0.3
