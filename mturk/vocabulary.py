"""The words of a study, declared once: what kinds of trial there are, what each asks, what a rater
may answer, and what role a trial plays. The study builder, the HIT pages, the simulated raters,
the vote readers and the report all read them here, so none can drift from another."""

from __future__ import annotations

# kind: pair (2AFC: which of two clips has fewer faults), real_fake (is this the real sound?), mos
# (a 1-5 score against two reference videos).
KINDS = ("pair", "real_fake", "mos")
# The paper's criteria for pair and MOS trials; real_fake asks only "real".
CRITERIA = ("missing", "redundant", "mismatched")
QUESTIONS = {"pair": CRITERIA, "real_fake": ("real",), "mos": CRITERIA}

# ---- the MOS scale: one direction (5 is best on every criterion), one wording -------------------
MOS_RATINGS = ("1", "2", "3", "4", "5")
MOS_BEST, MOS_WORST = "5", "1"

# What a rater may answer, with the label the HIT page shows for it.
ANSWER_LABELS = {
    "pair": {"left": "Left", "right": "Right"},
    "real_fake": {"real": "Real", "fake": "Not real"},
    "mos": dict(zip(MOS_RATINGS, ("1 (bad)", "2 (poor)", "3 (fair)", "4 (good)", "5 (excellent)"))),
}
ANSWERS = {kind: tuple(labels) for kind, labels in ANSWER_LABELS.items()}

# role: main (counted), gold (known answer needing the perception the study measures), catch
# (obvious to an attentive rater), practice (the first question of a page, answered with
# feedback, never stored as a vote).
ROLES = ("main", "gold", "catch", "practice")
VOTE_ROLES = tuple(r for r in ROLES if r != "practice")  # the roles a stored vote can have

# check: what a gold/catch trial really shows. A "misaligned" gold whose partner video had to come
# from another class is not the subtle check it was meant to be: it is labelled other_class/catch.
CHECKS = {
    "identical": "catch: the same clip on both sides (no right answer; shows side bias)",
    "silent": "catch: the picture with no sound at all",
    "other_class": "catch: the sound of a video of another class",
    "misaligned": "gold: the real sound of another video of the same class",
    "ref5_repeat": "catch (MOS): the reference scored 5 shown again as a question",
}
