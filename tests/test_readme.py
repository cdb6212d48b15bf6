"""The README's commands are the ones CI runs, and the ones it documents exist."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command_word_for_word():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] in readme


def test_the_readme_first_command_runs_a_bundled_example():
    readme = (ROOT / "README.md").read_text()
    line = next(x for x in readme.splitlines() if x.startswith("pip install") and "rescue " in x)
    _, _, command = line.partition("&& rescue ")
    script, _, config = command.partition(" --config ")
    assert (ROOT / script.strip()).is_file() and (ROOT / config.strip()).is_file()
