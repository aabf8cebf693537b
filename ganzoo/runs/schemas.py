"""What each file ganzoo reads must hold, as schemas (``ganzoo.core.schema``): the checkpoint
manifest, a metrics.jsonl record, an eval-*.json result and a comparison's compare.json. Every
reader checks through these before it uses a field; the tensors themselves (names, shapes, dtypes,
finite values, optimizer and RNG states) are checked against the run that loads them by
``ganzoo.runs.state_check``, and config.toml by ``ganzoo.core.config``.

Fields that a reader does not use are left open (``Record(extra=True)``), so that plugins and
newer versions may add their own; the ranges are those ganzoo itself can produce, with room.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ganzoo.core.errors import GanzooError
from ganzoo.core.safe_read import loads_json, read_bounded
from ganzoo.core.schema import MAX_NAME, Anything, Bool, Described, Either, Int, Items, ListOf, MapOf, Null, Num, Opt, Record, Str, check

COUNTER = Int(0, (1 << 48) - 1)  # steps, epochs: far above any run (ganzoo.runs.state_check.MAX_COUNTER)
NAME = Str(200)  # a part's or a plugin's name
PATH = Str(MAX_NAME)
MAX_GENERATORS = 256  # ganzoo.core.config: n_gens is at most 256
MAX_CLASSES = 1 << 16  # ganzoo.runs.models.MAX_CLASSES
SIDE = Int(1, 8192)  # an image's height or width in pixels
SCORE = Either(Num(), Null())  # a metric: NaN and infinities are written as null
SCORES = ListOf(SCORE, 1, MAX_GENERATORS)

PART = Record({"name": NAME, "plugin": NAME})

CHECKPOINT_MANIFEST = Record({
    "format": Int(),
    "strategy": NAME,
    "architecture": NAME,
    "image_shape": Described(Items(Int(1, 64), SIDE, SIDE), "[channels, height, width]: 1-64 channels, 1-8192 pixels"),
    "config": Record({
        "dataset": Str(MAX_NAME),
        "n_gens": Int(1, MAX_GENERATORS),
        "z_dim": Int(1, 1 << 20),
        "shared_z": Opt(Bool()),
        "data_root": Opt(PATH),
        "seed": Opt(Int(0, (1 << 32) - 1)),
        "options": Opt(MapOf(Anything())),
        "conditional": Opt(Bool()),
    }),
    "classes": Opt(Int(0, MAX_CLASSES)),
    "class_names": Opt(Either(ListOf(Str(200), 0, MAX_CLASSES), Null())),
    "parts": Opt(MapOf(PART, max_keys=16)),
    "discriminators": Opt(ListOf(Record({"name": NAME, "architecture": NAME, "plugin": NAME}), 1, 64)),
    "step": Opt(COUNTER),
    "epoch": Opt(COUNTER),
    "optimizer_groups": Opt(MapOf(ListOf(MapOf(Anything()), 0, 64), max_keys=MAX_GENERATORS + 64)),
    "data_sha256": Opt(Either(Str(64), Null())),
    "ganzoo_version": Opt(Str(64)),
})

METRICS_RECORD = Record({
    "epoch": COUNTER,
    "step": COUNTER,
    "partial": Opt(Bool()),
    **{key: Opt(SCORE) for key in ("d_loss", "g_loss_mean", "loss_gap", "d_accuracy", "chance", "images_per_s", "seconds",
                                   "train_seconds", "eval_seconds", "fid", "kid", "kid_std", "precision", "recall", "density",
                                   "coverage", "class_kl", "inception_score", "modes_kl", "class_consistency", "intra_fid_mean",
                                   "intra_fid_worst", "intra_precision_mean", "intra_recall_mean")},
    "intra_fid_worst_class": Opt(Int(0, MAX_CLASSES)),
    "g_loss": Opt(SCORES),
    "classes": Opt(Int(0, 1 << 32)),
    "modes": Opt(Int(0, 1 << 62)),
    "class_histogram": Opt(ListOf(Int(0, 1 << 62), 0, 1 << 16)),
    "fid_per_generator": Opt(SCORES),
    "classes_per_generator": Opt(ListOf(Int(0, 1 << 32), 1, MAX_GENERATORS)),
    "class_consistency_per_generator": Opt(SCORES),
    "intra_fid_mean_per_generator": Opt(SCORES),
    "extras": Opt(MapOf(SCORE, max_keys=1024)),
    "eval_protocol": Opt(MapOf(Anything(), max_keys=64)),
    "eval_weights": Opt(NAME),
})

CLASS_SCORES = ListOf(SCORE, 0, MAX_CLASSES)  # one score per class of a conditional run (null: not scored)

GENERATOR_SCORES = Record({"fid": SCORE, "kid": Opt(SCORE), "classes": Opt(Int(0, 1 << 32)),
                           "class_histogram": Opt(ListOf(Int(0, 1 << 62), 0, 1 << 16)),
                           "class_consistency": Opt(SCORE), "intra_fid_mean": Opt(SCORE),
                           "per_class_fid": Opt(CLASS_SCORES), "per_class_consistency": Opt(CLASS_SCORES)})

PER_CLASS = Record({"class": Int(0, MAX_CLASSES), "name": Opt(Either(Str(200), Null())),
                    **{key: Opt(SCORE) for key in ("fid", "precision", "recall", "consistency")},
                    "n_fake": Opt(Int(0, 1 << 40)), "n_real": Opt(Int(0, 1 << 40)), "note": Opt(Either(Str(1000), Null()))})

EVAL_RESULT = Record({
    "protocol": Record({"step": Opt(Either(COUNTER, Null())), "extractor": Opt(NAME), "n_fake": Opt(Int(0, 1 << 40)),
                        "n_real": Opt(Int(0, 1 << 40)), "dataset": Opt(Str(MAX_NAME)), "strategy": Opt(Either(NAME, Null())),
                        "weights": Opt(NAME)}),
    "fid": SCORE,
    **{key: Opt(SCORE) for key in ("kid", "kid_std", "precision", "recall", "density", "coverage", "class_kl",
                                   "inception_score", "modes_kl", "class_consistency", "intra_fid_mean", "intra_fid_worst",
                                   "intra_precision_mean", "intra_recall_mean")},
    "classes": Opt(Int(0, 1 << 32)),
    "class_histogram": Opt(ListOf(Int(0, 1 << 62), 0, 1 << 16)),
    "intra_fid_worst_class": Opt(Either(Int(0, MAX_CLASSES), Null())),
    "per_class": Opt(ListOf(PER_CLASS, 0, MAX_CLASSES)),
    "generators": Opt(ListOf(GENERATOR_SCORES, 1, MAX_GENERATORS)),
})

COMPARE_STATE = Record({
    "settings": Record({
        "specs": ListOf(Str(MAX_NAME), 1, 1024),
        "seeds": Int(1, 100),
        "epochs": Opt(Either(Int(0, 1 << 32), Null())),
        "minutes": Opt(Either(Num(0, 1e9), Null())),
        "dataset": Str(MAX_NAME),
        "limit_data": Opt(Int(0, 1 << 40)),
        "eval_every": Either(Str(64), Int(0, 1 << 32)),
        "eval_n": Opt(Int(2, 1 << 40)),
        "final_n": Int(2, 1 << 40),
        "features": NAME,
        "until_converged": Opt(Bool()),
        "resolution": Opt(Int(0, 8192)),
        "channels": Opt(Int(0, 64)),
    }),
    "command": Opt(Str(1 << 20)),
})


JSON_BYTES = 16 << 20  # an eval-*.json or a compare.json is a few kB


def read_eval(path: Path) -> dict[str, Any]:
    """An eval-<features>.json (a regular file, bounded, not through a link), checked against EVAL_RESULT."""
    try:
        result = loads_json(read_bounded(path, "evaluation", JSON_BYTES, follow=False))
    except ValueError as exc:
        raise GanzooError(f"{path} is not JSON ({exc})") from None
    return check(result, EVAL_RESULT, str(path))


def read_compare_state(path: Path) -> dict[str, Any]:
    """A comparison's compare.json (a regular file, bounded, not through a link), checked against COMPARE_STATE."""
    try:
        state = loads_json(read_bounded(path, "comparison state", JSON_BYTES, follow=False))
    except ValueError:
        raise GanzooError(f"{path} is not a ganzoo comparison's state (not JSON); use another --out") from None
    if not isinstance(state, dict) or not isinstance(state.get("settings"), dict):
        raise GanzooError(f"{path} is not a ganzoo comparison's state; use another --out")
    return check(state, COMPARE_STATE, str(path))
