"""Train the Rasa model when, and only when, its inputs changed.

The inputs are the training data, the domain, the config, the vocabulary (and the spaCy
patterns generated from it), and the code Rasa loads into the model (bot/nlu.py). Their
content hash is stored beside the model; a model whose hash matches is reused.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

from clinic import settings as clinic_settings
from knowledge import settings

ROOT = settings.PROJECT_ROOT
MODELS_DIR = ROOT / clinic_settings.current().models_dir
MODEL_NAME = "clinic"
MODEL_FILE = MODELS_DIR / f"{MODEL_NAME}.tar.gz"
HASH_FILE = MODELS_DIR / f"{MODEL_NAME}.inputs.sha256"
INPUT_FILES = (
    "domain.yml",
    "config.yml",
    "knowledge/vocabulary.yml",
    "knowledge/entity_patterns.jsonl",
    "bot/nlu.py",
    "bot/entities.py",
    "bot/policies.py",
    "bot/red_flags.py",
    "bot/language.py",
    "clinic/intents.py",
)
INPUT_DIRS = ("data",)


def training_inputs() -> list[Path]:
    """Every file whose content decides the trained model, in a stable order."""
    files = [ROOT / name for name in INPUT_FILES]
    for folder in INPUT_DIRS:
        files += sorted(p for p in (ROOT / folder).rglob("*") if p.is_file())
    return files


def inputs_hash() -> str:
    """The content hash of the training inputs (paths and bytes)."""
    digest = hashlib.sha256()
    for path in training_inputs():
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def model_is_current() -> bool:
    """Whether the trained model was trained from the current inputs."""
    return (
        MODEL_FILE.exists()
        and HASH_FILE.exists()
        and HASH_FILE.read_text().strip() == inputs_hash()
    )


def train_command(out: Path, name: str) -> list[str]:
    """`rasa train` of the project's config, domain and data into `out/<name>.tar.gz`."""
    return [
        sys.executable,
        "-m",
        "bot.rasa_cli",
        "train",
        "--config",
        "config.yml",
        "--domain",
        "domain.yml",
        "--data",
        "data",
        "--out",
        str(out),
        "--fixed-model-name",
        name,
    ]


def train(force: bool = False) -> bool:
    """Train unless the model is current; True if it trained. Raises on failure."""
    if not force and model_is_current():
        print(f"model up to date: {MODEL_FILE.relative_to(ROOT)}")
        return False
    digest = inputs_hash()
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    print("training the Rasa model (inputs changed)...", flush=True)
    started = time.perf_counter()
    command = train_command(MODELS_DIR, MODEL_NAME)
    result = subprocess.run(command, cwd=ROOT, check=False)  # noqa: S603
    if result.returncode != 0 or not MODEL_FILE.exists():
        raise RuntimeError(f"rasa train failed (exit {result.returncode})")
    HASH_FILE.write_text(digest + "\n")
    print(
        f"trained {MODEL_FILE.relative_to(ROOT)} in {time.perf_counter() - started:.0f}s"
    )
    return True
