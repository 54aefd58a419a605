"""The two classes: their names (records, answers, reports) and their index in every logit
and probability. A score is P(genuine); score >= the model's threshold says genuine."""

GENUINE = "genuine"  # a live person (ISO/IEC 30107-3: bona fide presentation)
SPOOF = "spoof"  # a presentation attack: print, replay, mask, ...
LABELS = (GENUINE, SPOOF)
SPOOF_CLASS, GENUINE_CLASS = 0, 1  # class indices: the network's output order


def decide(score: float, threshold: float) -> str:
    """The label a score gets at a threshold: genuine at or above it."""
    return GENUINE if score >= threshold else SPOOF
