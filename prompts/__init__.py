"""Everything the phone says: the catalog, TTS, audio files and their versions.

* :mod:`prompts.catalog` — keys, numbers and texts in ja/en/zh/es (the TOML files beside it)
* :mod:`prompts.phrases` — dates, times and numbers as spoken, from Babel's locale data
* :mod:`prompts.tts` — TTS engines behind one interface, with offline fallback
* :mod:`prompts.audio` — conversion to what Asterisk plays (8 kHz mono 16-bit WAV)
* :mod:`prompts.store` — prompt versions in the database: activate, roll back, import
* :mod:`prompts.render` — ``prompts build`` / ``check``: render what is missing or stale
* :mod:`prompts.dynamic` — names, dates and messages rendered on demand, cached
* :mod:`prompts.voice` — what the call flows use: key or text → playable sound name
"""
