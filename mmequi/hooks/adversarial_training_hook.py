"""The hook that turns an mmseg/mmdet training run into adversarial training: two config lines, no code.

    custom_imports = dict(imports=['mmequi'], allow_failed_imports=False)
    custom_hooks = [dict(type='AdversarialTrainingHook', attack=dict(type='PGD', eps=4, step_size=1, steps=3))]
"""
from typing import Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from mmequi.training import AdversarialPreprocessor, adversarial_preprocessor


@HOOKS.register_module()  # mmengine's root registry: found by mmseg and mmdet runners alike
class AdversarialTrainingHook(Hook):
    """Puts an :class:`~mmequi.training.AdversarialPreprocessor` in front of the model's data preprocessor for the
    training run (inside a distributed wrapper, the wrapped module's), tells it the iteration before each training
    step, logs the share of images made adversarial, and puts the model's own preprocessor back after training (the
    checkpoints hold the same keys either way: the preprocessors' buffers are not saved).

    Args:
        attack: an ``ATTACKS`` config (``dict(type='PGD', eps=4, step_size=1, steps=3)``, ε in 0–255 pixel units).
        ratio: the share of training images replaced by their adversarial version (1.0: the whole batch).
        seed: the seed of the choice of images and the attacks' random starts.
    """
    priority = 'VERY_HIGH'

    def __init__(self, attack: Optional[dict] = None, ratio: float = 1.0, seed: int = 0):
        if not isinstance(attack, dict):
            raise ValueError("AdversarialTrainingHook needs attack=dict(type='PGD', eps=4, step_size=1, steps=3) (an "
                             f'mmequi attack config), got {attack!r}')
        AdversarialPreprocessor.checked_attack(attack, ratio)  # a bad setting is an error now, not at the first step
        self.settings = dict(attack=attack, ratio=ratio, seed=seed)

    @staticmethod
    def inner(runner):
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    def before_train(self, runner):
        model = self.inner(runner)
        if adversarial_preprocessor(model) is not None:
            raise ValueError('the model already makes adversarial examples: use one AdversarialTrainingHook per run')
        model.data_preprocessor = AdversarialPreprocessor(model.data_preprocessor, model, **self.settings)
        runner.logger.info(f'adversarial training: attack={model.data_preprocessor.attack!r}, '
                           f"ratio={self.settings['ratio']}, seed={self.settings['seed']}")

    def before_train_iter(self, runner, batch_idx: int, data_batch=None):
        adversarial_preprocessor(self.inner(runner)).step = runner.iter

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None):
        runner.message_hub.update_scalar('train/adversarial_share', adversarial_preprocessor(self.inner(runner)).share)

    def after_train(self, runner):
        model = self.inner(runner)
        maker = adversarial_preprocessor(model)
        if maker is not None:
            model.data_preprocessor = maker.preprocessor
