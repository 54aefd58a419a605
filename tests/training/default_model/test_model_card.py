"""The model card (docs/model-card.md) is the committed default model's manifest, written out."""

from __future__ import annotations

import pytest

from model.manifest import DEFAULT_MODEL_DIR, read_manifest
from training.default_model.model_card import (
    BEGIN,
    END,
    MODEL_CARD,
    ModelCardError,
    _replace_block,
    main,
    render,
)


def test_the_model_card_page_matches_the_committed_manifest(capsys):
    assert main(["--check"]) == 0, capsys.readouterr().err


def test_the_card_carries_the_manifests_figures():
    manifest = read_manifest(DEFAULT_MODEL_DIR)
    card = render(manifest)
    test = manifest.metrics["test"]
    assert f"| HTER | {100 * test['hter']:.2f} %" in card
    assert f"| AUC | {100 * test['auc']:.2f} %" in card
    assert f"{manifest.threshold:.4f}" in card
    for person in manifest.training["people"]["test"]:
        assert person in card
    for row in manifest.metrics["real_clips"]:
        assert f"| {row['clip']} | {row['split']} |" in card


def test_a_stale_or_unmarked_page_is_caught():
    text = MODEL_CARD.read_text()
    block = text.split(BEGIN, 1)[1].split(END, 1)[0].lstrip("\n")
    stale = _replace_block(text, block.replace("| HTER |", "| HTER (old) |"))
    assert stale != text and _replace_block(stale, block) == text
    with pytest.raises(ModelCardError, match="markers"):
        _replace_block("# a page without a card\n", block)
