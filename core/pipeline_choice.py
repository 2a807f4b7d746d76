"""One pipeline throughout: which pipeline the app answers with (Browse, Compare, Cluster,
Review and exports alike), kept with the catalog, and whether its stored matches still follow
the catalog and the settings they would be computed with now.

By default the choice is the most accurate pipeline that has run on the catalog (else the most
accurate one that can run); a choice made by hand is stored in the catalog's database and
kept until it is changed or cleared.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.errors import SameSameError
from core.pipelines import PIPELINES, Pipeline, get_pipeline, most_accurate_first
from core.settings import MatchSettings, spec_of
from core.store import Store

#: The store setting holding the pipeline chosen by hand (absent or null: the default).
CHOICE_KEY = "chosen_pipeline"

#: Settings every pipeline's stored matches depend on (its clusters are formed with them).
CLUSTER_FIELDS = ("max_cluster_size", "cluster_min_link")
#: Those a rule pipeline's candidate search and cap read (the best matcher uses its own).
RULE_FIELDS = ("top_k", "neighbour_backend", "max_matches")
#: Which stored photo vectors a pipeline comparing pretrained ImageNet vectors reads.
IMAGENET_FIELDS = ("image_backbone", "image_alpha", "image_size")


def default_pipeline(store: Store, settings: MatchSettings | None = None) -> Pipeline:
    """The most accurate pipeline with stored matches for this catalog; else the most accurate
    one ready to run that compares photos by vectors where the catalog has no titles (see
    `photo_vectors_first`); else the most accurate of all."""
    ordered = most_accurate_first()
    for pipe in ordered:
        if store.match_run(pipe.name) is not None:
            return pipe
    settings = settings or store.load_settings()
    ready = [pipe for pipe in ordered if pipe.readiness(store, settings).ready]
    if ready:
        return photo_vectors_first(ready, store, settings)[0]
    return ordered[0]


def photo_vectors_first(
    pipes: list[Pipeline], store: Store, settings: MatchSettings
) -> list[Pipeline]:
    """``pipes`` (most accurate first), those with no image model here moved last where the
    catalog's postings have no titles.

    Without titles a pipeline's only evidence is its photos. One with no image model of its
    own yet (the ensemble before its Siamese network is trained) then compares perceptual
    hashes alone, which find little more than copies of one photo: on the grocery photos
    pHash scores F1 0.20, as low as matching each posting with itself only, where the
    baseline's ImageNet vectors score 0.39 (MobileNet 0.25) to 0.46 (EfficientNet-Lite2) on
    held-back products (BENCHMARKS.md, grocery table). Rank order alone would suggest the
    ensemble there.
    """
    if store.has_titles() or not store.count_postings():
        return pipes
    with_vectors = [pipe for pipe in pipes if pipe.image_model(store, settings) is not None]
    return with_vectors + [pipe for pipe in pipes if pipe not in with_vectors]


def chosen_by_hand(store: Store) -> str | None:
    """The pipeline chosen by hand for this catalog, or None (the default applies)."""
    name = store.get_setting(CHOICE_KEY)
    return name if name in PIPELINES else None


def chosen_pipeline(store: Store, settings: MatchSettings | None = None) -> Pipeline:
    """The pipeline every page answers with: the one chosen by hand, else the default."""
    name = chosen_by_hand(store)
    return get_pipeline(name) if name else default_pipeline(store, settings)


def choose_pipeline(store: Store, name: str | None) -> None:
    """Keep ``name`` as this catalog's pipeline (None: back to the default).

    Raises:
        SameSameError: no pipeline has that name.
    """
    if name is not None:
        get_pipeline(name)
    store.set_setting(CHOICE_KEY, name)


def matching_fields(pipe: Pipeline) -> tuple[str, ...]:
    """The settings the pipeline's stored matches depend on (a change calls for a re-run)."""
    fields = [*pipe.threshold_fields]
    if not pipe.needs_model:
        fields += RULE_FIELDS
    if pipe.translates:
        fields.append("translate_titles")
    if pipe.image_kind == "siamese":
        fields.append("siamese_threshold")
    elif pipe.image_kind == "imagenet" and not pipe.needs_model:
        fields += IMAGENET_FIELDS
    fields += CLUSTER_FIELDS
    return tuple(dict.fromkeys(fields))


@dataclass(frozen=True)
class RunState:
    """Whether a pipeline's stored matches are those it would compute now.

    Attributes:
        pipeline: the pipeline's name.
        ran: it has stored matches for this catalog.
        catalog_changed: postings were added, changed or removed since they were computed.
        changed: each setting changed since, as "label: old → new" (the Settings page's words).
    """

    pipeline: str
    ran: bool
    catalog_changed: bool = False
    changed: tuple[str, ...] = field(default_factory=tuple)

    @property
    def current(self) -> bool:
        return self.ran and not self.catalog_changed and not self.changed

    @property
    def headline(self) -> str:
        """One line for a banner; "" when the matches are current."""
        if not self.ran:
            return f"The {self.pipeline} pipeline has no matches for this catalog yet — run it"
        if self.changed:
            return "Matches are from the old settings — re-run"
        if self.catalog_changed:
            return "Matches are from an older catalog — re-run"
        return ""

    @property
    def details(self) -> str:
        """What changed since the matches were computed, in words; "" when nothing did."""
        parts = []
        if self.changed:
            parts.append(
                f"Changed since the {self.pipeline} matches were computed: "
                + "; ".join(self.changed)
                + "."
            )
        if self.catalog_changed:
            parts.append(
                f"The catalog changed since the {self.pipeline} matches were computed: new or "
                "changed postings are not matched yet."
            )
        return " ".join(parts)


def _shown(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def settings_changes(pipe: Pipeline, before: MatchSettings, now: MatchSettings) -> tuple[str, ...]:
    """The settings ``pipe``'s matches depend on that differ, "label: before → now"."""
    return tuple(
        f"{spec_of(name).label} {_shown(getattr(before, name))} → {_shown(getattr(now, name))}"
        for name in matching_fields(pipe)
        if getattr(before, name) != getattr(now, name)
    )


def run_state(store: Store, pipeline: str, settings: MatchSettings | None = None) -> RunState:
    """How the pipeline's stored matches stand against the catalog and ``settings`` (by
    default the catalog's stored ones), compared as the pipeline would apply them."""
    pipe = get_pipeline(pipeline)
    run = store.match_run(pipeline)
    if run is None:
        return RunState(pipeline, ran=False)
    now, _ = pipe.settings_for(store, settings or store.load_settings())
    try:
        before = MatchSettings.from_dict(run["settings"])
    except SameSameError:
        return RunState(pipeline, True, run["stale"], ("settings no longer valid",))
    return RunState(pipeline, True, bool(run["stale"]), settings_changes(pipe, before, now))


def current_runs(store: Store) -> dict[str, float]:
    """The pipelines whose stored matches are of the catalog as it is now, with when each was
    computed (seconds since the epoch); a catalog change leaves none until they run again."""
    runs = {pipe.name: store.match_run(pipe.name) for pipe in most_accurate_first()}
    return {
        name: float(run["computed_at"])
        for name, run in runs.items()
        if run is not None and not run["stale"]
    }
