"""Callbacks for the frameworks users train with: what they log reaches ``rescue.report``."""
