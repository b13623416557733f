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

from typing import ClassVar

from torch import Tensor, nn

from metastress.algorithms.base import BaseLearner, MetaLearner, Skeleton, Weights
from metastress.hyperparameters import MetaLSTMConfig
from metastress.models.conv4 import Conv4, init_weights
from metastress.models.meta_lstm import MetaLSTMNet


class MetaLSTM(MetaLearner):
    """Ravi & Larochelle's meta-learner LSTM on a Conv-4 learner, updated after every task.

    Args:
        n_way (int): classes per task.
        config (MetaLSTMConfig, optional): hyperparameters; defaults if None.
    """

    name: ClassVar[str] = "metalstm"
    updates_per_task: ClassVar[bool] = True
    fused_adapt_tasks: ClassVar[int | None] = 1

    def __init__(self, n_way: int, config: MetaLSTMConfig | None = None):
        super().__init__()
        self.config = config if config is not None else MetaLSTMConfig()
        learner = Conv4(n_way, self.config.hidden, self.config.activation)
        weights = init_weights(learner)
        self.skeleton = Skeleton.of(learner)
        self.meta = MetaLSTMNet(self.skeleton.flatten(weights), self.config.lstm_hidden)

    @property
    def meta_grad_clip(self) -> float:
        return self.config.meta_grad_clip

    @property
    def base_model(self) -> nn.Module:
        return self.skeleton.module

    def initial_weights(self) -> Weights:
        return self.skeleton.unflatten(self.meta.cell.c_I)

    def adaptation_start(self, init: Weights | None) -> Tensor:
        """The learner's flat parameters c_0 (P,): c_I, or `init` (the swap ablation)."""
        return self.meta.cell.c_I if init is None else self.skeleton.flatten(init)

    def adapt_task(
        self, base: BaseLearner, start: Tensor, support_x: Tensor, support_y: Tensor, steps: int
    ) -> Weights:
        """The meta-LSTM's steps from flat parameters c_0 = `start` (P,)."""
        state = self.meta.initial_state(start)
        for _ in range(steps):
            loss, grad = self._learner_inputs(base, state.c, support_x, support_y)
            state = self.meta(state, loss, grad)
        return self.skeleton.unflatten(state.c)

    def _learner_inputs(
        self, base: BaseLearner, c: Tensor, support_x: Tensor, support_y: Tensor
    ) -> tuple[Tensor, Tensor]:
        """The learner's support loss (scalar) and flat gradient (P,) at parameters c (P,),
        both constants (computed at detached parameters): no second-order terms."""
        grads, loss = base.loss_and_grads(
            self.skeleton.unflatten(c), support_x, support_y, first_order=True
        )
        return loss, self.skeleton.flatten(grads)


class MetaLSTMPlusPlus(MetaLSTM):
    """MetaLSTM++: the MetaLSTM network, one meta-update per meta-batch (mean query loss).

    References:
        The stress-test paper (MetaLSTM++, "trained in a MAML manner").
    """

    name: ClassVar[str] = "metalstm_pp"
    updates_per_task: ClassVar[bool] = False
