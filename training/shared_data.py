"""Where the real face data lives: ``../shared/data`` beside the repository, never committed.

real/     genuine face clips, one person each (the default model's sources)
attacks/  real replay attacks (scored by the leave-people-out evaluation)
images/   still photos (scored as static clips)
"""

from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL_CLIPS = SHARED_DATA / "real"
REAL_ATTACKS = SHARED_DATA / "attacks"
STILL_IMAGES = SHARED_DATA / "images"
