"""The running assistant: settings, the Rasa-side NLU component and NLG, the command line."""
