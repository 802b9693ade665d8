"""The verdict question: after an answer that reasons but states no verdict, one short request in the
same conversation asks for Yes or No, and its reply counts as that answer's verdict."""
import pytest
from scripted_backend import ScriptedBackend, cached

from pipeline.llm.chat import ChatMessage, SamplingParams
from pipeline.traces.prompt import (
    ANSWER_LINE,
    ASKED,
    HINTS,
    NO_VERDICT,
    VERDICT_QUESTION,
    VERDICT_TOKENS,
    read_asked_verdict,
)
from pipeline.traces.verification import VERIFIED, WRONG, TraceCase, run_verification, verification_stats

SAMPLING = SamplingParams(max_tokens=160, repetition_penalty=1.2)
REASONING = "The user liked three comedies in a row and this one is a comedy"  # no verdict stated


def new_case(row, label):
    return TraceCase(row=row, label=label, messages=[ChatMessage(role="user", content=f"Will they like item {row}?")])


def teacher(replies: dict[int, str], first: dict[int, str] | None = None):
    """Answers row r's first question with first[r] (default REASONING), a hint with REASONING, and
    a verdict question with replies[r]."""
    def answer(request):
        row = int(request.messages[0].content.split()[-1].rstrip("?"))
        if request.messages[-1].content == VERDICT_QUESTION:
            return replies[row]
        return (first or {}).get(row, REASONING) if len(request.messages) == 1 else REASONING
    return answer


@pytest.mark.parametrize(
    "reply, verdict",
    [("Yes.", 1), ("No", 0), ("No; Answer:", 0), ("No, I'm", 0), ("**Yes**", 1), ("Answer: No", 0),
     ("The user is", None), ("A) Action B", None), ("Yes or No", None), ("", None)],
)
def test_reply_to_the_verdict_question_is_read(reply, verdict):
    # the first five are SmolLM2-135M's replies; a bare word needs no reasoning after it
    assert read_asked_verdict(reply) == verdict


def test_question_is_sent_only_when_no_verdict_was_stated(tmp_path):
    first = {1: "The user liked every comedy so far.\nAnswer: Yes", 2: REASONING, 3: "Maybe so."}
    backend = ScriptedBackend(teacher({2: "Yes."}, first))
    cases = [new_case(1, 1), new_case(2, 1), new_case(3, 1)]
    run_verification(cases, cached(backend, tmp_path), SAMPLING, max_rounds=2, ask_verdict=True)
    questions = [r for r in backend.requests if r.messages[-1].content == VERDICT_QUESTION]
    assert len(questions) == 1  # not after a stated verdict (row 1) nor after an answer without reasoning (row 3)
    asked = questions[0]
    assert [m.role for m in asked.messages] == ["user", "assistant", "user"]
    assert asked.messages[1].content == REASONING  # the same conversation, continued
    assert asked.sampling.max_tokens == VERDICT_TOKENS == 3 and asked.sampling.repetition_penalty == 1.0
    assert [c.questions for c in cases] == [0, 1, 0] and [c.forms for c in cases] == [[ANSWER_LINE], [ASKED], [NO_VERDICT]]
    assert len(backend.requests) == 4  # three answers, one question, no second round


def test_asked_yes_and_no_both_verify_and_a_wrong_reply_gets_the_hint(tmp_path):
    backend = ScriptedBackend(teacher({1: "Yes.", 2: "No", 3: "Yes"}))
    liked, disliked, wrong = new_case(1, 1), new_case(2, 0), new_case(3, 0)
    run_verification([liked, disliked, wrong], cached(backend, tmp_path), SAMPLING, max_rounds=2, ask_verdict=True)
    assert (liked.outcome, liked.rounds, liked.forms) == (VERIFIED, 1, [ASKED])
    assert (disliked.outcome, disliked.rounds, disliked.forms) == (VERIFIED, 1, [ASKED])
    assert liked.trace == f"Yes. {REASONING}" and disliked.trace == f"No. {REASONING}"
    # row 3 said Yes when asked: the hint follows the reply, and round 2 is asked again
    assert (wrong.outcome, wrong.rounds, wrong.questions, wrong.forms) == (WRONG, 2, 2, [ASKED, ASKED])
    round_two = [r for r in backend.requests if len(r.messages) == 5][0].messages
    assert [m.content for m in round_two[1:]] == [REASONING, VERDICT_QUESTION, "Yes", HINTS[0].format(label="No")]
    # tokens: the scripted backend counts words; the replies' tokens are the row's too
    assert liked.tokens_out == len(REASONING.split()) + 1
    assert liked.tokens_in == 5 + (5 + len(REASONING.split()) + len(VERDICT_QUESTION.split()))


def test_unreadable_reply_leaves_the_answer_unverified(tmp_path):
    backend = ScriptedBackend(teacher({1: "The user is"}))
    case = new_case(1, 1)
    run_verification([case], cached(backend, tmp_path), SAMPLING, max_rounds=2, ask_verdict=True)
    assert (case.outcome, case.trace, case.forms, case.questions) == (WRONG, None, [NO_VERDICT, NO_VERDICT], 2)
    stats = verification_stats([case], max_rounds=2)
    assert stats["kept"] == 0 and stats["verdict_forms"] == {"answer_line": 0, "leading": 0, "asked": 0, "none": 2}


def test_without_ask_verdict_nothing_is_asked(tmp_path):
    backend = ScriptedBackend(teacher({}))  # a verdict question would find no reply: KeyError
    case = new_case(1, 1)
    run_verification([case], cached(backend, tmp_path), SAMPLING, max_rounds=2)
    assert (case.outcome, case.questions, case.forms) == (WRONG, 0, [NO_VERDICT, NO_VERDICT])
    assert len(backend.requests) == 2


def test_stats_count_asked_verdicts_and_questions_as_calls(tmp_path):
    backend = ScriptedBackend(teacher({1: "No", 2: "The user is", 3: "No."}, {3: "The user hates comedies. Answer: Yes"}))
    cases = [new_case(1, 1), new_case(2, 1), new_case(3, 0)]
    run_verification(cases, cached(backend, tmp_path), SAMPLING, max_rounds=2, ask_verdict=True)
    stats = verification_stats(cases, max_rounds=2)
    # row 1: asked No, hint, asked No; row 2: unreadable twice; row 3: wrong answer line, hint,
    # then the default REASONING and an asked No (right)
    assert stats["verdict_forms"] == {"answer_line": 1, "leading": 0, "asked": 3, "none": 2}
    assert stats["kept_verdict_forms"] == {"answer_line": 0, "leading": 0, "asked": 1, "none": 0}
    assert stats["verdict_questions"] == 5 and stats["teacher_calls"] == 6 + 5 == len(backend.requests)
    n = len(REASONING.split())  # the scripted backend counts words as tokens
    assert stats["tokens_out"] == (2 * n + 2) + (2 * n + 2 * 3) + (6 + n + 1)


def test_question_has_its_own_cache_key_and_a_rerun_is_answered_from_the_cache(tmp_path):
    backend = ScriptedBackend(teacher({1: "Yes."}))
    run_verification([new_case(1, 1)], cached(backend, tmp_path), SAMPLING, max_rounds=1, ask_verdict=True)
    main, question = backend.requests
    assert main.cache_key("scripted") != question.cache_key("scripted")
    # the question's conversation, asked with the main call's sampling, is yet another request
    assert question.model_copy(update={"sampling": SAMPLING}).cache_key("scripted") != question.cache_key("scripted")
    again = ScriptedBackend([])  # any call would fail: no answer left
    client = cached(again, tmp_path)
    case = new_case(1, 1)
    run_verification([case], client, SAMPLING, max_rounds=1, ask_verdict=True)
    assert case.outcome == VERIFIED and case.forms == [ASKED] and not again.requests
    assert client.stats()["calls"] == 0 and client.stats()["cache_hits"] == 2
