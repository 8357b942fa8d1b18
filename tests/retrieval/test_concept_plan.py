"""Concept plans: phrases to whole-word patterns, coverage by concept, and a search re-ranked by a plan."""

from __future__ import annotations

import re

from retrieval.concept_plan import MAX_CONCEPTS, ConceptPlan
from retrieval.index_ports import SearchMode
from retrieval.search import DEFAULT_RANKING, PLANNED_RANKING, PromptHit, Retriever

DOG = {"subject": ["dog", "puppy", "corgi", "golden retriever"], "style": ["cartoon", "pixar", "cel-shaded"]}
ROBOT = {"subject": ["robot", "android", "mech", "cyborg"], "framing": ["portrait", "headshot", "close-up"]}


def test_phrases_match_whole_words_plurals_and_hyphens_alike() -> None:
    plan = ConceptPlan.from_phrases(DOG, "test")
    assert plan is not None and plan.source == "test"
    assert [c.name for c in plan.concepts] == ["subject", "style"]
    assert plan.covered("two corgis in a pixar movie") == ("subject", "style")
    assert plan.covered("a golden-retriever, cel shaded") == ("subject", "style")
    assert plan.covered("a hotdog cartoonish") == ()  # whole words only: no dog in hotdog
    assert plan.covered("DOG on a beach") == ("subject",)


def test_phrases_are_escaped_and_empty_plans_are_none() -> None:
    plan = ConceptPlan.from_phrases({"subject": ["c++ (coder)", "  ", "..."]}, "test")
    assert plan is not None and len(plan.concepts[0].patterns) == 1
    assert plan.covered("a c++ (coder) at work") == ("subject",)
    assert ConceptPlan.from_phrases({"subject": ["", "!!"]}, "test") is None
    assert ConceptPlan.from_phrases({}, "test") is None
    many = {f"c{i}": ["cat"] for i in range(MAX_CONCEPTS + 3)}
    bounded = ConceptPlan.from_phrases(many, "test")
    assert bounded is not None and len(bounded.concepts) == MAX_CONCEPTS


def test_patterns_plan_takes_regexes_as_written() -> None:
    plan = ConceptPlan.from_patterns({"subject": ["pupp(?:y|ies)"], "setting": ["space"]}, "evaluation")
    assert plan.covered("puppies floating in space") == ("subject", "setting")
    assert plan.covered("a puppyish grin") == ()
    assert "subject: pupp(?:y|ies)" in plan.describe()
    phrased = ConceptPlan.from_phrases(DOG, "test")
    assert phrased is not None
    assert phrased.describe().startswith("subject: dog, puppy, corgi, golden retriever;")


def test_a_plans_phrases_join_the_keyword_query(retriever: Retriever) -> None:
    phrased = ConceptPlan.from_phrases(ROBOT, "test")
    assert phrased is not None
    assert phrased.search_words() == "robot android mech cyborg portrait headshot close-up"
    bare = ConceptPlan.from_patterns({"subject": ["robots?"]}, "evaluation")
    assert bare.search_words() == ""
    words = {"subject": ["robot", "android"]}
    worded = ConceptPlan.from_patterns({"subject": ["robots?"]}, "evaluation", words)
    assert worded.search_words() == "robot android"
    # an idea with none of the plan's words: only the keyword query can bring its concepts into the pool
    idea = "a friendly tin man"
    with_words = retriever.search(idea, k=10, plan=worded, mode=SearchMode.SPARSE)
    without = retriever.search(idea, k=10, plan=bare, mode=SearchMode.SPARSE)
    robot = re.compile(r"\b(?:robots?|androids?)\b", re.I)
    found = [sum(bool(robot.search(h.prompt)) for h in hits) for hits in (with_words, without)]
    assert found[0] > found[1]


def test_a_plan_re_ranks_by_its_concepts(retriever: Retriever) -> None:
    idea = "a picture of a friendly machine man's face"  # the small index holds 8 robot portraits
    plan = ConceptPlan.from_phrases(ROBOT, "test")
    assert plan is not None
    subject, style = (re.compile(r"\b(?:" + "|".join(c.patterns) + r")\b", re.I) for c in plan.concepts)
    planned = retriever.search(idea, k=5, plan=plan, explain=True)
    unplanned = retriever.search(idea, k=5, explain=True)

    def both(hits: list[PromptHit]) -> int:
        return sum(bool(subject.search(h.prompt) and style.search(h.prompt)) for h in hits)

    assert both(planned) > both(unplanned)  # the words as typed name neither concept
    dogs = [bool(subject.search(h.prompt)) for h in planned]
    assert sum(dogs) >= sum(bool(subject.search(h.prompt)) for h in unplanned)
    for hit in planned:
        why = hit.explanation
        assert why is not None and set(why.covered) <= {"subject", "framing"}
        assert why.coverage == len(why.covered) / 2 and why.plan.startswith("subject: robot")
    # coverage sorts first under PLANNED_RANKING: no hit covers less than one after it
    coverages = [h.explanation.coverage for h in planned if h.explanation]
    assert coverages == sorted(coverages, reverse=True)
    assert PLANNED_RANKING.coverage_first and not DEFAULT_RANKING.coverage_first
    blended = retriever.search(idea, k=5, plan=plan, ranking=DEFAULT_RANKING, explain=True)
    assert all(h.explanation and h.explanation.plan for h in blended)
    assert unplanned[0].explanation is not None and unplanned[0].explanation.plan == ""
