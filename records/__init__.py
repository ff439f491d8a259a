"""The clinic's records beside Rasa's conversations: call-back requests and staff accounts.

They live in the same database as Rasa's SQL tracker store (records.store), which
keeps the conversations themselves; nothing here copies a transcript.
"""
