"""Config loading shared by ``tools/train.py``, ``tools/test.py`` and the reports."""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction

SUPPORTED_SCOPES = ('mmseg', 'mmdet')


def parse_runner_args(parser, argv=None):
    """Add the options every mm tool shares (``--cfg-options``, ``--launcher``, ``--local-rank``), parse ``argv`` and
    export ``LOCAL_RANK`` for torch.distributed launchers."""
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, key=value pairs')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def cfg_options_dict(options):
    """``key=value`` strings (a report's ``--cfg-options``, passed on to every test run) as the dict the test tool
    merges into the config (``DictAction``'s parsing), or None."""
    if not options:
        return None
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(['--cfg-options', *options]).cfg_options


def evaluators(cfg) -> list:
    """The test evaluator's metric configs of ``cfg`` with their type's bare name (``kind``)."""
    metrics = cfg.get('test_evaluator')
    return [(str((m or {}).get('type', '')).split('.')[-1], m)
            for m in (metrics if isinstance(metrics, (list, tuple)) else [metrics])]


def task_scope(cfg):
    """'mmseg' or 'mmdet': the config's ``default_scope`` says which codebase the model belongs to."""
    scope = cfg.get('default_scope')
    if scope not in SUPPORTED_SCOPES:
        raise ValueError(f"config default_scope is {scope!r}; mmequi supports {SUPPORTED_SCOPES}")
    return scope


# The configs shipped with the package (package data; in a checkout, a link to the repository's configs/).
CONFIG_ROOT = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), '.mim', 'configs')
BASE_DIR = osp.join(CONFIG_ROOT, '_base_')


def config_path(path):
    """A config file path, or ``mmequi::<path>`` inside the installed configs (``mmequi::demo/<name>.py``)."""
    if path.startswith('mmequi::'):
        path = osp.join(CONFIG_ROOT, path[len('mmequi::'):])
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file not found: {path}')
    return path


def plain(value):
    """A config value as plain dicts and lists (a ``ConfigDict`` compares by content only once converted)."""
    return value.to_dict() if hasattr(value, 'to_dict') else value


def stated_once(kind, in_hook, top_level):
    """The one ``attack`` / ``defense`` of a run: the config's top-level ``kind`` (what ``--cfg-options kind.KEY=...``
    and ``--kind-opts`` change), else the ``RobustTestHook`` entry's own. Both stated and different is refused: a copy
    that silently disagrees (e.g. ``attack={{_base_.attack}}`` in the hook, then ``--cfg-options attack.eps=8``)."""
    in_hook, top_level = plain(in_hook), plain(top_level)
    if top_level is None or in_hook is None or in_hook == top_level:
        return in_hook if top_level is None else top_level
    raise ValueError(f'the config states `{kind}` twice and they disagree: top level {top_level!r}, RobustTestHook '
                     f'{kind}={in_hook!r}; state it once, at the top level (--cfg-options {kind}.KEY=VALUE and '
                     f'--{kind}-opts KEY=VALUE change that one), and drop {kind}= from the hook entry')


def load_config(path, cfg_options=None, work_dir=None, launcher='none'):
    """Read a config as mmseg's/mmdet's tools do: ``--cfg-options`` merged, ``--work-dir`` (else
    ``work_dirs/<config name>``), and the launcher. ``path`` may be ``mmequi::<path in the shipped configs>``."""
    path = config_path(path)
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


ROBUST_HOOK = 'RobustTestHook'


def robust_hook_entry(cfg):
    """The ``RobustTestHook`` entry of ``cfg.custom_hooks`` (a dict you can edit), or None."""
    for hook in cfg.get('custom_hooks', None) or []:
        if str(hook.get('type', '')).split('.')[-1] == ROBUST_HOOK:
            return hook
    return None


def load_component(kind, name):
    """``attack`` / ``defense`` config from the shipped ``_base_/{kind}s/<name>.py`` or a file path; 'none' -> None."""
    if name.lower() == 'none':
        return None
    path = name if name.endswith('.py') else osp.join(BASE_DIR, f'{kind}s', f'{name}.py')
    if not osp.isfile(path):
        choices = sorted(f[:-3] for f in os.listdir(osp.join(BASE_DIR, f'{kind}s')) if f.endswith('.py'))
        raise FileNotFoundError(f'unknown {kind} {name!r}: no file {path}; choose one of {choices} or a path')
    part = Config.fromfile(path)
    if kind not in part:
        raise ValueError(f'{path} does not define `{kind} = dict(...)`')
    value = part[kind]
    return value.to_dict() if hasattr(value, 'to_dict') else value


def set_robust_test(cfg, attack=None, defense=None, attack_opts=None, defense_opts=None):
    """Apply ``--attack`` / ``--defense`` (names, see :func:`load_component`) and their option overrides to
    ``cfg``'s one ``attack`` / ``defense`` (the top level, :func:`stated_once`; one the hook entry held moves there),
    add a ``RobustTestHook`` entry if there is none, and import mmequi. Returns the hook entry, or None for a plain
    test run."""
    entry = robust_hook_entry(cfg)
    if entry is None and attack is None and defense is None and not attack_opts and not defense_opts:
        return None
    if entry is None:
        entry = dict(type=ROBUST_HOOK)
        cfg.custom_hooks = list(cfg.get('custom_hooks', None) or []) + [entry]
        entry = cfg.custom_hooks[-1]
    for kind, name, opts in (('attack', attack, attack_opts), ('defense', defense, defense_opts)):
        value = stated_once(kind, entry.pop(kind, None), cfg.get(kind))
        if name is not None:
            value = load_component(kind, name)
        if opts:
            if value is None:
                raise ValueError(f'--{kind}-opts {dict(opts)} given, but the run has no {kind}')
            value = {**value, **opts}
        cfg[kind] = value
    imports = cfg.get('custom_imports', None) or dict(imports=[], allow_failed_imports=False)
    if 'mmequi' not in imports['imports']:
        imports['imports'] = list(imports['imports']) + ['mmequi']
    cfg.custom_imports = imports
    return entry
