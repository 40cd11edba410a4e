"""Renraku (連絡): telephony-first school-to-home contact platform."""

__version__ = "0.1.0"
