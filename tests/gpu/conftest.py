"""The GPU tests: `pytest -m gpu` on a machine with a CUDA device (`make gpu-check` runs them); a plain
`pytest` deselects them. They import without a GPU, and fail at once, saying so, when run without one."""

import pytest


@pytest.fixture(scope="session", autouse=True)
def cuda_device():
    import torch

    if not torch.cuda.is_available():
        pytest.fail("the GPU tests need a CUDA device and torch sees none (torch.cuda.is_available() is False)")
    return torch.device("cuda")
