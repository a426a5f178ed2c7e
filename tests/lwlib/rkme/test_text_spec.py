"""Text RKME: offline MiniLM embeddings, language detection, and the reference JSON layout with ``language``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lwlib.errors import LwdockError, SpecFormatError
from lwlib.rkme.text import RKMETextSpec, detect_languages, embed_texts

SPORT = ["The football team won the match last night.", "The striker scored two goals in the final.",
         "Fans cheered as the players lifted the trophy.", "The coach praised the defence after the game.",
         "The tennis champion won in straight sets.", "The marathon runners crossed the finish line."]
FINANCE = ["The central bank raised interest rates again.", "Stock markets fell sharply on inflation fears.",
           "The company reported record quarterly earnings.", "Bond yields climbed as investors sold debt.",
           "The currency weakened against the dollar.", "Analysts cut their forecasts for the bank."]


def test_detect_languages_heuristic() -> None:
    assert detect_languages(SPORT) == ["en"]
    langs = detect_languages(["the cat is on the mat", "le chat est sur la table", "我爱北京天安门", "the dog"])
    assert langs[0] == "en" and set(langs) == {"en", "fr", "zh-cn"}
    with pytest.raises(LwdockError):
        detect_languages("one string, not a list")


def test_fit_on_precomputed_embeddings_round_trips(tmp_path) -> None:
    emb = np.random.default_rng(0).normal(size=(40, 384))
    spec = RKMETextSpec(reduced_set_size=10).fit(emb)
    spec.language_ = ["en"]
    path = spec.save(tmp_path / "text.json")
    keys = list(json.loads(path.read_text()))
    assert keys == ["z", "beta", "gamma", "num_points", "type", "language"]
    loaded = RKMETextSpec.load(path)
    assert loaded.language == ["en"] and loaded.to_json() == path.read_text()
    bad = json.loads(path.read_text())
    bad["language"] = "en"
    with pytest.raises(SpecFormatError) as err:
        RKMETextSpec.from_dict(bad)
    assert err.value.code == "spec_language"


def test_embeddings_and_text_spec_separate_topics() -> None:
    emb = embed_texts(SPORT[:2])
    assert emb.shape == (2, 384) and emb.dtype == np.float64
    sport = RKMETextSpec(reduced_set_size=4).fit(SPORT)
    finance = RKMETextSpec(reduced_set_size=4).fit(FINANCE)
    assert sport.language == ["en"] and sport.n_features == 384
    held_out_sport = embed_texts(["The goalkeeper saved a penalty in the cup match."])
    assert sport.mmd2(held_out_sport) < finance.mmd2(held_out_sport)
