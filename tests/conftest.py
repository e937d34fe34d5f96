"""Shared test set-up: every test runs offline, as CI and a classroom without wifi do."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ.pop("CHATKIT_MODEL", None)
