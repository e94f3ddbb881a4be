"""rules.yaml tooling: `python -m addon.check` (`ai-proxy-check`) validates a rules file as the addon loads it and
says what each rule matches and where it sends it (describe.py); `--schema` prints the JSON Schema of the file,
generated from the pydantic models (schema.py), which the repository ships as schema/rules.schema.json."""
