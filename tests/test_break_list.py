"""The break list of tools/dev/break_check.py stays applicable: every break still finds its text, exactly once, and
names tests that exist (a break whose text moved away would otherwise pass unnoticed)."""
import os.path as osp

import pytest

from tools.dev.break_check import BREAKS, ROOT


@pytest.mark.parametrize('item', BREAKS, ids=[b.name for b in BREAKS])
def test_each_break_applies_once_and_names_existing_tests(item):
    with open(osp.join(ROOT, item.path)) as f:
        source = f.read()
    assert source.count(item.old) == 1, f'{item.name}: its text occurs {source.count(item.old)} times in {item.path}'
    assert item.new != item.old and item.tests
    for test in item.tests:
        path, _, name = test.partition('::')
        assert osp.isfile(osp.join(ROOT, path)), f'{item.name}: no test file {path}'
        if name:
            with open(osp.join(ROOT, path)) as f:
                assert f'def {name.split("[")[0]}(' in f.read(), f'{item.name}: no test {test}'


def test_break_names_are_unique():
    names = [b.name for b in BREAKS]
    assert len(names) == len(set(names))
