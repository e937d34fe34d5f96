"""Shared test set-up: every test runs offline, as CI and a classroom without wifi do."""

import os

import pytest
import torch

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ.pop("CHATKIT_MODEL", None)


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """Tiny models run fastest on one thread, and on a busy machine more threads stall each other."""
    torch.set_num_threads(1)
