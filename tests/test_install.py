"""A plain (not editable) ``pip install .`` in a fresh virtual environment: the configs ship with the package, so
from another directory a robust run works by config name, with ``--attack``/``--defense`` names and ``mmequi::``
bases resolved in the installed package."""
import os
import os.path as osp
import shutil
import subprocess
import sys

from conftest import ROOT, SEG_CHECKPOINT

EXTERNAL_CONFIG = '''_base_ = ['mmequi::demo/fcn_r18-d8_synthetic-cityscapes.py',
          'mmequi::_base_/attacks/pgd_linf_eps4_20steps.py', 'mmequi::_base_/defenses/equivariance.py']
custom_imports = dict(imports=['mmequi'], allow_failed_imports=False)
custom_hooks = [dict(type='RobustTestHook', seed=0)]
'''


def run(command, cwd, env):
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f'{command} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}'
    return done.stdout


def test_plain_install_runs_from_another_directory(tmp_path):
    from testbed import generate_cityscapes

    # The tracked files only (as a clean clone has them), so nothing of this checkout's build state leaks in.
    source = tmp_path / 'source'
    tracked = subprocess.run(['git', 'ls-files'], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for name in tracked.split():
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if osp.islink(osp.join(ROOT, name)):
            os.symlink(os.readlink(osp.join(ROOT, name)), target)
        else:
            shutil.copy2(osp.join(ROOT, name), target)
    venv = tmp_path / 'venv'
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'PYTHONWARNINGS')}
    run([sys.executable, '-m', 'venv', '--system-site-packages', str(venv)], tmp_path, env)
    python = str(venv / 'bin' / 'python')
    run([python, '-m', 'pip', 'install', '-q', '--no-deps', '--no-build-isolation', '--no-index', str(source)],
        tmp_path, env)
    shutil.rmtree(source)  # the installed package must stand on its own

    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    location = run([python, '-c', 'import mmequi; print(mmequi.__file__)'], elsewhere, env).strip()
    assert location.startswith(str(venv)), location
    data_root = generate_cityscapes(tmp_path / 'data', num_train=1, num_val=1)
    options = ['--cfg-options', f'test_dataloader.dataset.data_root={data_root}']
    fast = ['--attack-opts', 'steps=1', '--defense-opts', 'steps=1', 'num_views=1']

    # 1. A shipped config by name, attack and defense by name, through the console command.
    out = run([str(venv / 'bin' / 'mmequi-test'), 'mmequi::demo/fcn_r18-d8_synthetic-cityscapes.py', SEG_CHECKPOINT,
               '--attack', 'pgd_linf_eps4_20steps', '--defense', 'equivariance', *fast, '--work-dir', 'run1',
               *options], elsewhere, env)
    assert 'mIoU' in out or osp.isdir(elsewhere / 'run1')
    # 2. A user's own config whose bases are the installed mmequi configs.
    (elsewhere / 'my_robust_config.py').write_text(EXTERNAL_CONFIG)
    run([python, '-m', 'mmequi.apis.test', 'my_robust_config.py', SEG_CHECKPOINT, *fast, '--work-dir', 'run2',
         *options], elsewhere, env)
    for work_dir in ('run1', 'run2'):
        runs = [d for d in os.listdir(elsewhere / work_dir) if osp.isfile(elsewhere / work_dir / d / 'robustness.json')]
        assert len(runs) == 1, os.listdir(elsewhere / work_dir)
