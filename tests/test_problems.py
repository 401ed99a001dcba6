"""The Problems at the end of each lesson: every lesson has at least 3; the README, the stub
exercises/NN/answers.py, the reference solutions/NN/answers.py and the worked answers
solutions/NN/answers.md agree on them; each reference value that the course's own code can
compute equals what it computes; the untouched stubs report "not answered", the reference
passes, and a wrong answer is reported without its reference value."""

import dataclasses
import math
import re
import shutil

import jax
import pytest

from shared import collectives, hardware, inference, kernels, model, network, roofline, timeline
from shared.config import preset
from shared.course import check

LESSONS = check.lesson_dirs()
CHIPS = hardware.CHIPS
MiB, GiB = 2**20, 2**30


def reference(lesson) -> dict:
    return check.read_answers(check.ROOT / "solutions" / lesson.name / check.ANSWERS_FILE)


def readme_problems(lesson) -> list[int]:
    """The numbers of the items in the README's "## Problems" section."""
    text = (check.ROOT / "lessons" / lesson.name / "README.md").read_text()
    match = re.search(r"^## Problems\n(.*?)(?=^## )", text, re.S | re.M)
    assert match, f"lessons/{lesson.name}/README.md has no '## Problems' section followed by another"
    return [int(n) for n in re.findall(r"^(\d+)\. \*\*", match.group(1), re.M)]


def worked_answers(lesson) -> dict[int, str]:
    """Problem number -> the text of the "**Answer: ...**" line in answers.md."""
    text = (check.ROOT / "solutions" / lesson.name / "answers.md").read_text()
    sections = re.split(r"^## Problem (\d+)\b.*$", text, flags=re.M)
    answers = {}
    for number, body in zip(sections[1::2], sections[2::2]):
        found = re.findall(r"\*\*Answer: ([^*]+)\*\*", body)
        assert len(found) == 1, f"{lesson.name}/answers.md problem {number}: want one **Answer: ...** line"
        answers[int(number)] = found[0].strip()
    return answers


def parse_answer(text: str):
    """The first token of an answer line: a number (commas allowed) or a lower-case word."""
    token = text.split()[0].rstrip(".,;")
    try:
        return float(token.replace(",", ""))
    except ValueError:
        return token.lower()


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.name for p in LESSONS])
def test_problems_agree(lesson):
    ref = reference(lesson)
    n = len(ref)
    assert n >= 3, f"{lesson.name} has {n} problems, want >= 3"
    assert sorted(ref) == list(range(1, n + 1)), f"{lesson.name}: problems are not numbered 1..{n}"
    stub = check.read_answers(lesson / check.ANSWERS_FILE)
    assert sorted(stub) == sorted(ref), f"{lesson.name}: the stub's problems differ from the reference's"
    assert readme_problems(lesson) == list(range(1, n + 1)), \
        f"{lesson.name}: the README lists problems {readme_problems(lesson)}, the reference 1..{n}"
    worked = worked_answers(lesson)
    assert sorted(worked) == sorted(ref), f"{lesson.name}/answers.md works problems {sorted(worked)}"
    for k, value in ref.items():
        assert value is not None, f"{lesson.name}: reference for problem {k} is None"
        if isinstance(value, str):
            assert value == value.lower(), f"{lesson.name} problem {k}: a word answer must be lower case"
        stated = parse_answer(worked[k])
        assert check.judge(stated, value) == "correct", \
            f"{lesson.name}/answers.md problem {k} says {worked[k]!r}, the reference is {value!r}"


def course_values() -> dict[tuple[str, int], float]:
    """Reference answers recomputed with the course's own code, where it has the function."""
    tiny, small, m125, b1 = (preset(name).model for name in ("tiny", "small", "125m", "1b"))
    param_count = lambda c: model.param_count(jax.eval_shape(lambda: model.init(c, jax.random.key(0))))
    h100, a100 = CHIPS["H100"], CHIPS["A100"]
    sent = collectives.bytes_sent_per_device
    attention = lambda c: model.train_flops_per_token(c) - 6 * model.matmul_param_count(c)
    mesh = jax.make_mesh((4, 2), ("data", "model"))
    shard = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data", "model"))
    return {
        ("01", 1): model.matmul_param_count(small),
        ("01", 2): attention(small) / model.train_flops_per_token(small),
        ("01", 3): 6 * model.matmul_param_count(tiny) / (attention(tiny) / tiny.seq_len),
        ("01", 5): 100_000 * model.train_flops_per_token(m125) / a100.flops("bfloat16"),
        ("02", 1): roofline.ridge_point(CHIPS["H200"]),
        ("02", 2): math.ceil(4 * roofline.ridge_point(h100)),
        ("02", 3): 3 * 256 * MiB / h100.memory_bw * 1e3,
        ("02", 5): roofline.mfu(2 * 8192**3, 1.56e-3, h100),
        ("03", 1): math.prod(shard.shard_shape((4096, 1024))),
        ("03", 2): sent("all-reduce", 64 * MiB, 8),
        ("03", 3): collectives.collective_seconds("all-gather", GiB, 16, CHIPS["TPU v5e"].link_bw) * 1e3,
        ("03", 4): sent("all-gather", MiB, 1024) / sent("all-gather", MiB, 8),
        ("04", 1): sent("all-gather", 8192**2 * 2, 16),
        ("04", 3): a100.flops("bfloat16") / a100.link_bw * (2 / 2) * 7 / 8,
        ("04", 5): h100.flops("bfloat16") / h100.link_bw * (2 / 2) * 3,
        ("04", 6): timeline.step("fsdp", timeline.Stack.on("H100", 4096 * 8, 8192, 4, 8), "on",
                                 backward=False).time * 1e3,
        ("04", 7): network.hybrid_step_prediction(8192, 8192, 32, 2, 8, 2)["network"] / 1e6,
        ("05", 2): inference.kv_bytes_per_token(dataclasses.replace(b1, n_kv_heads=4)) * 4096 / MiB,
        ("06", 1): param_count(small) * 12,
        ("06", 3): 8192 * model.train_flops_per_token(small) / (0.6 * 998e9),
        ("06", 4): sent("all-reduce", param_count(tiny) * 4, 4),
        ("06", 6): small.n_layers * 2 * (small.n_layers * preset("small").train.batch_size
                   * small.seq_len * small.d_ff * 2) / 1e9,
        ("07", 2): 405e9 * 2 / h100.memory_bytes,
        ("07", 3): 2 * 70e9 * 8192 / 0.5 / h100.flops("bfloat16"),
        ("07", 4): 8e9 * 2 * 100 / h100.memory_bw,
        ("08", 1): roofline.mbu(7e9 * 2, 20e-3, h100),
        ("08", 3): math.ceil(roofline.ridge_point(CHIPS["TPU v5e"])),
        ("08", 5): (model.matmul_param_count(m125) * 2 + 8 * 1024 * inference.kv_bytes_per_token(m125))
        / h100.memory_bw * 1e3,
        ("08", 7): 2 * inference.kv_bytes_per_token(dataclasses.replace(m125, dtype="float32")) * 1024
        / 54e9 * 1e3,
        ("09", 1): inference.kv_bytes_per_token(b1) * 32 * 2048 / GiB,
        ("09", 2): roofline.ridge_point(a100) * 2 / 2,
        ("09", 5): 70e9 * 2 * (1 - 1 / 8) / h100.memory_bw * 1e3,
        ("10", 2): 2 * 4096**3 / kernels.matmul_hbm_bytes(4096, 4096, 4096, 512, 512, 2),
        ("10", 5): param_count(small) * 4 + 32 * 256 * 4,
    }


def test_references_match_the_course_code():
    by_number = {lesson.name[:2]: reference(lesson) for lesson in LESSONS}
    for (nn, k), computed in course_values().items():
        value = by_number[nn][k]
        assert math.isclose(value, computed, rel_tol=1e-9), \
            f"lesson {nn} problem {k}: reference {value!r}, the course's code gives {computed!r}"


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.name for p in LESSONS])
def test_stubs_unanswered_and_solutions_correct(lesson):
    stub = check.check_problems(lesson)
    assert not stub.error, stub.error
    assert set(stub.verdicts.values()) == {"not answered"}, f"{lesson.name}: {stub.verdicts}"
    solved = check.check_problems(lesson, solutions=True)
    assert not solved.error and solved.correct == len(solved.verdicts) >= 3, check.problems_line(solved)


def test_learner_answers_are_judged_without_revealing_them(tmp_path):
    lesson = check.lesson_dirs("03")[0]
    mine = tmp_path / lesson.name
    mine.mkdir()
    shutil.copy(check.ROOT / "solutions" / lesson.name / check.ANSWERS_FILE, mine / check.ANSWERS_FILE)
    assert check.check_problems(mine).correct == len(reference(lesson))
    (mine / check.ANSWERS_FILE).write_text(
        "ANSWERS = {1: 1024 * 512, 2: 2 * 64 * 2**20 * 7 / 8 * 1.03, 3: 'fast', 5: ' All-Reduce '}\n")
    report = check.check_problems(mine)
    assert report.verdicts == {1: "correct", 2: "wrong", 3: "wrong", 4: "not answered",
                               5: "correct", 6: "not answered"}
    line = check.problems_line(report)
    assert line == "2/6 problems correct; wrong: 2, 3; not answered: 4, 6", line
    (mine / check.ANSWERS_FILE).write_text("ANSWERS = {1: 1 / 0}\n")
    assert "ZeroDivisionError" in check.check_problems(mine).error


@pytest.mark.parametrize("given, ref, verdict", [
    (None, 3.0, "not answered"), (3.05, 3.0, "correct"), (3.1, 3.0, "wrong"), (-3.0, 3.0, "wrong"),
    ("3", 3.0, "wrong"), (True, 1.0, "wrong"), (float("nan"), 3.0, "wrong"),
    ("YES", "yes", "correct"), ("no", "yes", "wrong"), (1, "yes", "wrong"),
])
def test_judge(given, ref, verdict):
    assert check.judge(given, ref) == verdict


def test_command_line(capsys):
    assert check.main(["05", "--problems"]) == 1
    out = capsys.readouterr().out
    assert "05_attention" in out and "0/6 problems correct; not answered: 1, 2, 3, 4, 5, 6" in out
    assert check.main(["05", "--problems", "--solutions"]) == 0
