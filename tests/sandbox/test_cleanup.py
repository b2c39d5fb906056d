"""Removing trees a candidate built: any depth, no symlink followed, never an exception."""

import os
import shutil

import pytest

from evosearch.sandbox.cleanup import remove_tree


def _deep(root, depth: int) -> None:
    here = os.getcwd()
    os.chdir(root)
    try:
        for _ in range(depth):
            os.mkdir("d")
            os.chdir("d")
            with open("f", "w") as f:
                f.write("x")
    finally:
        os.chdir(here)


def test_a_tree_too_deep_for_shutil_is_removed(tmp_path):
    # Why this module exists: the host's cleanup must not be the standard library's recursion.
    # (One tree for both checks: removing 3000 levels takes seconds. shutil gives up about 1000
    # levels down, so most of the tree is still as the job built it when remove_tree takes it.)
    tree = tmp_path / "deep"
    tree.mkdir()
    _deep(tree, 3000)
    with pytest.raises(RecursionError):
        shutil.rmtree(tree)
    assert remove_tree(tree) and not tree.exists()


def test_symlinks_are_unlinked_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("host data")
    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "b" / "to_outside").symlink_to(outside, target_is_directory=True)
    (tree / "to_file").symlink_to(outside / "keep")
    assert remove_tree(tree) and not tree.exists()
    assert (outside / "keep").read_text() == "host data"


def test_wide_trees_files_and_missing_paths(tmp_path):
    tree = tmp_path / "wide"
    for i in range(50):
        (tree / f"d{i}").mkdir(parents=True)
        (tree / f"d{i}" / "f").write_text("x")
        (tree / f"f{i}").write_text("x")
    assert remove_tree(tree) and not tree.exists()
    single = tmp_path / "file"
    single.write_text("x")
    assert remove_tree(single) and not single.exists()
    assert remove_tree(tmp_path / "never-there")


def test_a_bounded_amount_of_work_leaves_the_rest_and_says_so(tmp_path):
    tree = tmp_path / "deep"
    tree.mkdir()
    _deep(tree, 50)
    assert not remove_tree(tree, max_entries=10) and tree.exists()
    assert remove_tree(tree) and not tree.exists()
