"""Config loading shared by ``tools/train.py``, ``tools/test.py`` and the reports."""
import os.path as osp

from mmengine.config import Config, DictAction  # noqa: F401  (DictAction re-exported for the tools)

SUPPORTED_SCOPES = ('mmseg', 'mmdet')


def task_scope(cfg):
    """'mmseg' or 'mmdet': the config's ``default_scope`` says which codebase the model belongs to."""
    scope = cfg.get('default_scope')
    if scope not in SUPPORTED_SCOPES:
        raise ValueError(f"config default_scope is {scope!r}; mmequi supports {SUPPORTED_SCOPES}")
    return scope


def load_config(path, cfg_options=None, work_dir=None, launcher='none'):
    """Read a config as mmseg's/mmdet's tools do: ``--cfg-options`` merged, ``--work-dir`` (else
    ``work_dirs/<config name>``), and the launcher."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file not found: {path}')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    task_scope(cfg)
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(path))[0])
    return cfg
