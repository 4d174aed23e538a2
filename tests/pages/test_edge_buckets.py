"""Split-test buckets of the edge (pages.edge.buckets_assign): shares and moves."""

from __future__ import annotations

from collections import Counter

from pages import edge


def test_buckets_follow_the_weights_and_every_served_variant_gets_one():
    assert Counter(edge.buckets_assign([(1, 1, 50), (2, 2, 50)], [None] * 100)) == {
        1: 50,
        2: 50,
    }
    assert Counter(edge.buckets_assign([(1, 1, 1), (2, 2, 2)], [None] * 100)) == {
        1: 33,
        2: 67,
    }
    # A weight far below 1 % still gets a bucket; a paused variant gets none.
    shares = edge.buckets_assign([(1, 1, 1), (2, 2, 999), (3, 3, 0)], [None] * 100)
    assert Counter(shares) == {1: 1, 2: 99}


def test_a_weight_change_moves_only_the_buckets_it_must():
    before = edge.buckets_assign([(1, 1, 50), (2, 2, 50)], [None] * 100)
    after = edge.buckets_assign([(1, 1, 20), (2, 2, 80)], before)
    assert Counter(after) == {1: 20, 2: 80}
    moved = sum(a != b for a, b in zip(before, after, strict=True))
    assert moved == 30
    # A new version of a page keeps its buckets (they are the page's).
    assert edge.buckets_assign([(1, 9, 20), (2, 2, 80)], after) == after


def test_pruning_removes_what_is_no_longer_served_after_its_grace(tmp_path, settings):
    """Folders of variants no longer served, and files of the layout before variant
    folders, go once older than the grace period; live folders stay."""
    import os

    settings.EDGE_ROOT = tmp_path
    kind = tmp_path / "sites" / "7" / "s"
    for name in ("3-1", "3-2"):
        (kind / "v" / name).mkdir(parents=True)
        (kind / "v" / name / "index.html").write_text("page")
    (kind / "3-0.html").write_text("old layout")
    for path in (kind / "v" / "3-1", kind / "v" / "3-2", kind / "3-0.html"):
        os.utime(path, (1, 1))
    snap = edge.Snapshot(
        steps={7: edge.Step(7, 1, 1, "f", "s", True, [(3, 2, 100)])}, routes={}
    )
    assert edge.artifacts_prune(snap) == 2
    assert sorted(p.name for p in kind.iterdir()) == ["v"]
    assert [p.name for p in (kind / "v").iterdir()] == ["3-2"]
