"""benchmarks/readme_figures.py: the statistics and the README block it writes, on synthetic runs (issue 15)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import load_benchmark

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def figures():
    return load_benchmark("readme_figures")


def run(seed: int, final: float, periodic: list[float]) -> dict:
    return {
        "seed": seed,
        "final": final,
        "periodic": [(5000 * (i + 1), v) for i, v in enumerate(periodic)],
        "train_sps": 1000.0 + seed,
    }


def test_stability_counts_the_evaluations_after_each_seeds_first_success(figures):
    row = figures.ROWS["cartpole"]
    runs = [
        run(0, 500, [100, 500, 500, 300, 500]),  # first at 10k; after it 3 evaluations, 2 stay
        run(1, 500, [480, 500]),  # first at 5k; 1 after, stays
        run(2, 200, [100, 200]),  # never: not counted
    ]
    assert figures.stability(row, runs) == (3, 4, 7500)


def test_summary_counts_seeds_at_the_threshold_and_seeds_0_to_9(figures):
    row = figures.ROWS["cartpole"]
    runs = [run(s, 500.0 if s != 3 else 474.9, [500.0]) for s in range(12)]
    record = figures.summarise(row, runs)
    assert record["reached"] == 11 and record["reached_seeds_0_9"] == 9
    assert record["mean"] == pytest.approx((11 * 500 + 474.9) / 12)
    assert record["median_train_sps"] == pytest.approx(1005.5)
    assert record["command"] == "python train.py seed=<k>"


def test_the_readme_block_is_rewritten_between_its_markers_only(figures, tmp_path, monkeypatch):
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{figures.BEGIN}\nold table\n{figures.END}\nafter\n")
    monkeypatch.setattr(figures, "README", readme)
    figures.rewrite_readme("new table")
    assert readme.read_text() == f"before\n{figures.BEGIN}\nnew table\n{figures.END}\nafter\n"


def test_the_table_names_each_rows_command_and_target(figures):
    row = figures.ROWS["acrobot"]
    record = figures.summarise(row, [run(s, -90.0 + s, [-95.0, -90.0]) for s in range(3)])
    text = figures.table({"acrobot": record})
    assert "`python train.py env=Acrobot`" in text and "3/3" in text and row.target in text


def test_the_readme_has_the_block_and_its_commands_are_the_quick_start(figures):
    text = (ROOT / "README.md").read_text()
    block = text[text.index(figures.BEGIN) : text.index(figures.END)]
    for row in figures.ROWS.values():
        assert f"`{row.command()}`" in block, row.command()
    assert "python train.py\n" in text  # the Quick start trains with the bare command the first row measures


def test_a_rows_folder_follows_its_composed_config_only(figures):
    """Retuning one env's defaults reruns that row alone; the same command keeps its finished runs."""
    row = figures.ROWS["mountaincar"]
    again = figures.Row(row.name, row.title, row.overrides, row.seeds, row.threshold, row.target)
    retuned = figures.Row(
        row.name, row.title, (*row.overrides, "agent.lr=1e-3"), 1, row.threshold, row.target
    )
    assert figures.row_version(row) == figures.row_version(again)
    assert figures.row_version(row).startswith("mountaincar-")
    assert figures.row_version(retuned) != figures.row_version(row)
    assert figures.row_version(figures.ROWS["cartpole"]) != figures.row_version(row)
