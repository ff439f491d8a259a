"""What every other package of the assistant shares, at the bottom of the layers.

The typed settings (`clinic.settings`), the log masking of patients' contact details
(`clinic.privacy`), the intents the code names (`clinic.intents`) and the warning filters
(`clinic.quiet`). It imports nothing of the project, so `bot`, `staff`, `actions` and
`records` can all import it (docs/architecture.md).
"""
