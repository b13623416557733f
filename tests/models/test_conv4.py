import pytest
import torch
from torch.func import functional_call

from metastress.models import Conv4, init_weights


@pytest.mark.parametrize("n_way", [5, 20, 200])
def test_output_shape(n_way):
    model = Conv4(n_way)
    assert model(torch.rand(7, 1, 28, 28)).shape == (7, n_way)


def test_functional_call_equals_module_call():
    torch.manual_seed(0)
    model = Conv4(5, hidden=8)
    x = torch.rand(10, 1, 28, 28)
    weights = {k: v + 0.01 * torch.randn_like(v) for k, v in init_weights(model).items()}
    expected_model = Conv4(5, hidden=8)
    expected_model.load_state_dict(weights)
    torch.testing.assert_close(functional_call(model, weights, (x,)), expected_model(x))


def test_batch_norm_uses_the_batch_statistics():
    """Transductive batch norm: an image's logits depend on the rest of its batch."""
    torch.manual_seed(0)
    model = Conv4(5, hidden=8)
    x = torch.rand(6, 1, 28, 28)
    alone = model(x[:3])
    with_others = model(torch.cat([x[:3], x[3:] * 3]))[:3]
    assert not torch.allclose(alone, with_others)
    features = model.norms[0](model.convs[0](x))
    torch.testing.assert_close(features.mean(dim=(0, 2, 3)), torch.zeros(8), atol=1e-5, rtol=0)


def test_unknown_activation_is_refused():
    with pytest.raises(ValueError, match="activation must be one of"):
        Conv4(5, activation="tanh")
