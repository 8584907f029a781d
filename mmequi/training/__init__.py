"""Training-time robustness: adversarial training in mmengine's loop (``AdversarialTrainingHook`` wires it)."""
from .adversarial import AdversarialPreprocessor, TrainingLoss, adversarial_preprocessor

__all__ = ['AdversarialPreprocessor', 'TrainingLoss', 'adversarial_preprocessor']
