"""A simulated reviewer: answers open Label Studio tasks through its API, as a person would.

It reads the true labels from the home's oracle (``oracle.jsonl`` or ``oracle.csv``, see
:mod:`data_engine.review.oracle`; the engine itself never reads it) and answers each open task with
the true label, or with a wrong answer (the task's, a wrong class for classification) with
probability ``1 - accuracy``. Several simulated reviewers (``annotator`` emails) can
answer the same tasks, for multi-annotator consensus. The demo, the integration tests and the
benchmark use it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from data_engine.errors import EngineError
from data_engine.review.labelstudio.client import ReviewClient
from data_engine.review.labelstudio.labeling import DISCARD_CHOICE, FROM_NAME, TO_NAME
from data_engine.review.oracle import read_oracle
from data_engine.tasks import Classification, Task

__all__ = ["SimulationResult", "read_oracle", "simulate_reviews"]

# Seconds a simulated reviewer "spends" on a task (recorded as the annotation's lead time).
LEAD_TIME_RANGE = (2.0, 12.0)


@dataclass(frozen=True)
class SimulationResult:
    """What the simulated reviewer did."""

    answered: int
    correct: int
    unknown: int
    annotator: str
    # Answers not posted because a pull would refuse them (the task's rule, against the classes):
    # their tasks stay open. ``refusals`` names each as "example_id: why".
    refused: int = 0
    refusals: tuple[str, ...] = ()


def simulate_reviews(
    client: ReviewClient,
    project_id: int,
    oracle: dict[str, str],
    classes: list[str],
    *,
    accuracy: float = 0.98,
    limit: int | None = None,
    seed: int = 0,
    annotator: str | None = None,
    workers: int = 1,
    label_task: Task | None = None,
) -> SimulationResult:
    """Answer up to ``limit`` open tasks of ``project_id`` (one annotation POST each).

    ``annotator`` is an email: that user is created if needed and the answers are recorded as
    theirs (the API key must belong to an admin); by default the key's owner answers. A task
    whose example is not in the oracle is left open, and so is one whose answer a pull would refuse
    (:meth:`~data_engine.tasks.Task.answer_problem` against ``classes``, as the pull checks it):
    those are counted in ``refused`` and named in ``refusals``, never in ``answered``. ``workers`` > 1 posts from that many threads
    (the benchmark: 2,000 answers one after another take minutes). ``label_task``: the dataset's
    task, which says how an answer is posted and what a mistake is (default: one class per example).
    """
    label_task = label_task or Classification()
    if not 0.0 <= accuracy <= 1.0:
        raise EngineError(f"--accuracy {accuracy}: must be between 0 and 1")
    if label_task.has_classes and len(classes) < 2:
        raise EngineError("the simulated reviewer needs at least two classes")
    if limit is not None and limit < 1:
        return SimulationResult(answered=0, correct=0, unknown=0, annotator=annotator or "")
    rng = random.Random(seed)
    user_id = client.ensure_user(annotator) if annotator else None
    who = annotator or client.check()
    tasks = _open_for(client, project_id, user_id, limit)
    answers: list[tuple[int, str, float]] = []
    correct = unknown = 0
    refusals: list[str] = []
    choices = [*classes, DISCARD_CHOICE]  # what a pull accepts (review.pull._record)
    for task in tasks:
        example_id = str(task["data"].get("example_id"))
        truth = oracle.get(example_id)
        if truth is None:
            unknown += 1
            continue
        right = rng.random() < accuracy
        choice = truth if right else label_task.wrong_answer(truth, classes, rng)
        # Read the answer back as a pull reads it, and judge it by the pull's rule.
        result = label_task.review_result(choice, task["data"], from_name=FROM_NAME, to_name=TO_NAME)
        posted = label_task.answer_label(result, from_name=FROM_NAME)
        why = "no answer" if posted is None else label_task.answer_problem(posted, choices)
        if why:
            refusals.append(f"{example_id}: {why}")
            continue
        correct += right
        answers.append((task["id"], result, round(rng.uniform(*LEAD_TIME_RANGE), 2)))

    def answer(item: tuple[int, list, float]) -> None:
        task_id, result, lead_time = item
        client.create_annotation(task_id, result, lead_time=lead_time, completed_by=user_id)

    if workers > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(answer, answers))
    else:
        for item in answers:
            answer(item)
    answered = len(answers)
    return SimulationResult(answered=answered, correct=correct, unknown=unknown, annotator=who,
                            refused=len(refusals), refusals=tuple(refusals))


def _open_for(client: ReviewClient, project_id: int, user_id: int | None, limit: int | None) -> list[dict]:
    """Open tasks for this reviewer: unannotated ones, or for a named second reviewer, tasks
    that reviewer has not answered yet (including ones others already answered)."""
    if user_id is None:
        return client.open_tasks(project_id, limit)
    # Annotated tasks come back without their data (a pull does not need it): take the data from
    # the full task list and the answers from the annotated one.
    answered = {t["id"] for t in client.annotated_tasks(project_id, None)
                if any(a.get("completed_by") == user_id for a in t.get("annotations") or [])}
    mine = [t for t in client.tasks_after(project_id, 0) if t["id"] not in answered]
    return mine[:limit] if limit else mine
