"""Custom actions (rasa_sdk): read the tracker, ask the knowledge store, set slots."""
