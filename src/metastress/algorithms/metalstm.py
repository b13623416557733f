"""MetaLSTM and MetaLSTM++: a learned LSTM optimizer that also learns the initialization.

The meta-learner (models/meta_lstm.py) turns each step's support loss and gradient into the
learner's next parameters; its cell state starts at c_I, the learned initialization, so
`initial_weights()` is c_I unflattened. The loss and gradient enter as constants: there is no
second-order term, as in Ravi & Larochelle. There is no `inner_lr`: the input gate i_t is the
learned, per-coordinate and per-step learning rate.

- "metalstm" (Ravi & Larochelle): one meta-update after each task, tasks in sequence
  (`updates_per_task = True`).
- "metalstm_pp" (the stress-test paper): the same network, one meta-update on the mean query
  loss of the B tasks of a meta-batch, as MAML does.

Both clip the meta-gradient norm at `meta_grad_clip` (0.25, Ravi & Larochelle); the training
loop applies it.

References:
    Ravi & Larochelle (2017). Optimization as a Model for Few-Shot Learning. ICLR.
"""

from dataclasses import dataclass
from functools import partial
from typing import ClassVar

from torch import Tensor

from metastress.algorithms.base import FastWeights, MetaLearner
from metastress.algorithms.inner import (
    InnerConfig,
    Skeleton,
    Weights,
    check_at_least,
    check_init,
    check_positive,
    loss_and_grads,
    map_tasks,
    resolve_steps,
    resolve_task_mode,
    task_logits,
)
from metastress.models.conv4 import Conv4, init_weights
from metastress.models.meta_lstm import MetaLSTMNet


@dataclass(frozen=True)
class MetaLSTMConfig(InnerConfig):
    """MetaLSTM's keys (plus InnerConfig's); no inner_lr, the input gate is the learned rate.

    Args:
        lstm_hidden (int, default=20): hidden size of the first (LSTMCell) layer.
        meta_grad_clip (float, default=0.25): meta-gradient norm clip.
    """

    lstm_hidden: int = 20
    meta_grad_clip: float = 0.25

    def __post_init__(self):
        super().__post_init__()
        check_at_least("lstm_hidden", self.lstm_hidden, 1)
        check_positive("meta_grad_clip", self.meta_grad_clip)


class MetaLSTM(MetaLearner):
    """Ravi & Larochelle's meta-learner LSTM on a Conv-4 learner, updated after every task.

    Args:
        n_way (int): classes per task.
        config (MetaLSTMConfig, optional): hyperparameters; defaults if None.
    """

    name: ClassVar[str] = "metalstm"
    updates_per_task: ClassVar[bool] = True
    config_class: ClassVar[type] = MetaLSTMConfig

    def __init__(self, n_way: int, config: MetaLSTMConfig | None = None):
        super().__init__()
        self.config = config if config is not None else self.config_class()
        learner = Conv4(n_way, self.config.hidden, self.config.activation)
        weights = init_weights(learner)
        self.skeleton = Skeleton.of(learner)
        self.meta = MetaLSTMNet(self.skeleton.flatten(weights), self.config.lstm_hidden)

    @property
    def meta_grad_clip(self) -> float:
        return self.config.meta_grad_clip

    def initial_weights(self) -> Weights:
        return self.skeleton.unflatten(self.meta.cell.c_I)

    def learner_inputs(
        self, c: Tensor, support_x: Tensor, support_y: Tensor
    ) -> tuple[Tensor, Tensor]:
        """The learner's support loss (scalar) and flat gradient (P,) at parameters c (P,).

        For a fused chunk of T tasks: c (T, P) gives losses (T,) and gradients (T, P).

        Both are constants (computed at detached parameters): no second-order terms.
        """
        grads, loss = loss_and_grads(
            self.skeleton.module, self.skeleton.unflatten(c), support_x, support_y, first_order=True
        )
        return loss, self.skeleton.flatten(grads)

    def adapt_task(self, c0: Tensor, support_x: Tensor, support_y: Tensor, steps: int) -> Weights:
        """Adapt one task from flat parameters c0 (P,) with `steps` meta-LSTM steps."""
        state = self.meta.initial_state(c0)
        for _ in range(steps):
            loss, grad = self.learner_inputs(state.c, support_x, support_y)
            state = self.meta(state, loss, grad)
        return self.skeleton.unflatten(state.c)

    def adapt(
        self,
        support_x: Tensor,
        support_y: Tensor,
        steps: int | None = None,
        init: Weights | None = None,
    ) -> FastWeights:
        """See MetaLearner.adapt; `init` replaces c_I as c_0 (the init-swap ablation)."""
        steps = resolve_steps(steps, self.config.inner_steps)
        if init is None:
            c0 = self.meta.cell.c_I
        else:
            check_init(init, self.skeleton.shapes)
            c0 = self.skeleton.flatten(init)
        mode = resolve_task_mode(self.config.task_mode, support_x.device)
        adapt_one = partial(self.adapt_task, steps=steps)
        # fused: one task at a time; the meta-LSTM's (P, 4H) gate tensors per task already
        # exceed the cache, and chunks of small tasks measured 2x slower (benchmarks/)
        return map_tasks(adapt_one, mode, (None, 0, 0), c0, support_x, support_y, chunk=1)

    def predict(self, fast_weights: FastWeights, query_x: Tensor) -> Tensor:
        mode = resolve_task_mode(self.config.task_mode, query_x.device)
        return task_logits(self.skeleton.module, fast_weights, query_x, mode)  # (B, N*Q, N)


class MetaLSTMPlusPlus(MetaLSTM):
    """MetaLSTM++: the MetaLSTM network, one meta-update per meta-batch (mean query loss).

    References:
        The stress-test paper (MetaLSTM++, "trained in a MAML manner").
    """

    name: ClassVar[str] = "metalstm_pp"
    updates_per_task: ClassVar[bool] = False
