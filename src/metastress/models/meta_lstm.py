"""The coordinate-wise LSTM meta-learner of Ravi & Larochelle (2017).

One small network is shared by every coordinate of the base learner's flat parameter vector
(P coordinates act as the batch):

1. preprocess the learner's loss and gradient (Andrychowicz et al. 2016, p = 10) into 4 inputs;
2. an LSTM cell (4 -> lstm_hidden) gives h_t;
3. the meta-LSTM cell, whose cell state IS the learner's parameters:
       f_t = sigmoid(W_F . [h_t, c_{t-1}, f_{t-1}] + b_F)
       i_t = sigmoid(W_I . [h_t, c_{t-1}, i_{t-1}] + b_I)
       c_t = f_t * c_{t-1} - i_t * grad_t
   with c_0 = c_I, the learned initialization; f_0 = i_0 = 0.

Every op is a plain tensor op (no fused `lstm_cell`), so the network runs under
`torch.func.vmap`, which has no batching rule for `aten::lstm_cell`.

References:
    Ravi & Larochelle (2017). Optimization as a Model for Few-Shot Learning. ICLR.
    Andrychowicz et al. (2016). Learning to learn by gradient descent by gradient descent.
    NeurIPS (appendix A, gradient preprocessing). Deviation: f_{t-1}, i_{t-1} enter the gates
    as gate values, as in Ravi & Larochelle's equations, not as pre-activations as in some
    public ports.
"""

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

PREPROCESS_P = 10.0  # Andrychowicz et al. (2016)
GATE_WEIGHT_INIT = 0.01  # W_F, W_I ~ U(-0.01, 0.01) (Ravi & Larochelle's code)
FORGET_BIAS_INIT = (4.0, 6.0)  # b_F ~ U(4, 6): start with f ~ 1, i.e. keep the parameters
INPUT_BIAS_INIT = (-5.0, -4.0)  # b_I ~ U(-5, -4): start with a small learning rate i ~ 0.01
N_INPUTS = 4  # preprocessed (loss, gradient): 2 numbers each


def preprocess(x: Tensor, p: float = PREPROCESS_P) -> Tensor:
    """Andrychowicz et al.'s scaling: x -> (ln|x| / p, sign x) if |x| >= e^-p else (-1, e^p x).

    Args:
        x (Tensor): any shape (...).
        p (float, default=10): the scale.

    Returns:
        Tensor: (..., 2).
    """
    big = x.abs() >= math.exp(-p)
    log_part = torch.where(big, x.abs().clamp_min(math.exp(-p)).log() / p, -torch.ones_like(x))
    sign_part = torch.where(big, torch.sign(x), math.exp(p) * x)
    return torch.stack([log_part, sign_part], dim=-1)


def lstm_cell(x: Tensor, h: Tensor, c: Tensor, cell: nn.LSTMCell) -> tuple[Tensor, Tensor]:
    """`cell(x, (h, c))` written from tensor ops (same gate order i, f, g, o as nn.LSTMCell).

    One addmm over [x, h] keeps the (P, 4H) temporaries to one: about 2x faster on the CPU
    than separate products and bias adds (and than nn.LSTMCell) at P ~ 1e5 coordinates.
    Leading dimensions (T, P, ...) of several tasks' coordinates are allowed.
    """
    weight = torch.cat([cell.weight_ih, cell.weight_hh], dim=1)  # (4H, inputs + H)
    inputs = torch.cat([x, h], dim=-1)  # (..., P, inputs + H)
    gates = torch.addmm(cell.bias_ih + cell.bias_hh, inputs.flatten(0, -2), weight.T)
    gates = gates.view(*inputs.shape[:-1], -1)  # (..., P, 4H)
    i, f, g, o = gates.chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    return h, c


class MetaLSTMState(NamedTuple):
    """Per-coordinate state of the meta-learner while it adapts one learner."""

    h: Tensor  # (P, H) first-layer hidden state
    c_lstm: Tensor  # (P, H) first-layer cell state
    f: Tensor  # (P,) previous forget gate
    i: Tensor  # (P,) previous input gate
    c: Tensor  # (P,) the learner's parameters


class MetaLSTMCell(nn.Module):
    """The meta-LSTM cell: learned forget/input gates over the learner's parameters.

    Args:
        lstm_hidden (int): size of h_t, the first layer's output.
        c_init (Tensor): (P,) initial value of c_I, the learned initialization.
    """

    def __init__(self, lstm_hidden: int, c_init: Tensor):
        super().__init__()
        low, high = FORGET_BIAS_INIT
        self.W_F = nn.Parameter(
            torch.empty(lstm_hidden + 2).uniform_(-GATE_WEIGHT_INIT, GATE_WEIGHT_INIT)
        )
        self.W_I = nn.Parameter(
            torch.empty(lstm_hidden + 2).uniform_(-GATE_WEIGHT_INIT, GATE_WEIGHT_INIT)
        )
        self.b_F = nn.Parameter(torch.empty(()).uniform_(low, high))
        low, high = INPUT_BIAS_INIT
        self.b_I = nn.Parameter(torch.empty(()).uniform_(low, high))
        self.c_I = nn.Parameter(c_init.detach().clone())  # (P,)

    def forward(
        self, h: Tensor, grad: Tensor, state: MetaLSTMState
    ) -> tuple[Tensor, Tensor, Tensor]:
        """(c_t, f_t, i_t), each (P,), from h_t (P, H), grad_t (P,) and the previous state.

        Leading task dimensions are allowed: (T, P) and (T, P, H).

        W . [h, c, g] is split as W[:H] . h + W[H] c + W[H+1] g, so both gates share one
        (P, H) @ (H, 2) product instead of concatenating (P, H+2) inputs twice.
        """
        W_F, W_I = self.W_F, self.W_I
        from_h = h @ torch.stack([W_F[:-2], W_I[:-2]], dim=1)  # (..., P, 2)
        f = torch.sigmoid(from_h[..., 0] + W_F[-2] * state.c + W_F[-1] * state.f + self.b_F)
        i = torch.sigmoid(from_h[..., 1] + W_I[-2] * state.c + W_I[-1] * state.i + self.b_I)
        return f * state.c - i * grad, f, i


class MetaLSTMNet(nn.Module):
    """The two-layer coordinate-wise meta-learner (module docstring).

    Args:
        c_init (Tensor): (P,) the learner's flat initial parameters, the start of c_I.
        lstm_hidden (int): hidden size of the first layer (Ravi & Larochelle use 20).
    """

    def __init__(self, c_init: Tensor, lstm_hidden: int):
        super().__init__()
        self.lstm = nn.LSTMCell(N_INPUTS, lstm_hidden)
        self.cell = MetaLSTMCell(lstm_hidden, c_init)

    def initial_state(self, c0: Tensor) -> MetaLSTMState:
        """Zero recurrent state with the learner's parameters c0 (P,) (or (T, P) for T tasks)."""
        zeros = c0.new_zeros(*c0.shape, self.lstm.hidden_size)  # (P, H)
        gates = c0.new_zeros(c0.shape)  # (P,)
        return MetaLSTMState(zeros, zeros, gates, gates, c0)

    def forward(self, state: MetaLSTMState, loss: Tensor, grad: Tensor) -> MetaLSTMState:
        """One optimization step of the learner.

        Args:
            state (MetaLSTMState): the state after the previous step.
            loss (Tensor): scalar learner loss, a constant (detached); (T,) for T tasks.
            grad (Tensor): (P,) learner gradient, a constant (detached); (T, P) for T tasks.

        Returns:
            MetaLSTMState: the next state; its `c` is the learner's next parameters.
        """
        loss_in = preprocess(loss).unsqueeze(-2).expand(*grad.shape, 2)  # (P, 2)
        x = torch.cat([loss_in, preprocess(grad)], dim=-1)  # (P, 4)
        h, c_lstm = lstm_cell(x, state.h, state.c_lstm, self.lstm)  # (P, H) each
        c, f, i = self.cell(h, grad, state)
        return MetaLSTMState(h, c_lstm, f, i, c)
