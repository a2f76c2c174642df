"""A model's category: from mirador.yaml, else inferred by transparent rules.

The rules look at the model name first, then its SYSTEM prompt, and the first rule whose
words appear wins. They are listed here so a person can see why a model got a category.
"""

from __future__ import annotations

import re

# (category, words in the name, words in the SYSTEM prompt)
RULES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("embedding", ("embed",), ()),
    ("financial_planning", ("financ", "budget", "money", "invest", "fin_"),
     ("financial", "budget", "retirement", "savings")),
    ("decision_simplification", ("decision", "decide", "simplif"),
     ("decision", "options", "trade-off")),
    ("local_expert", ("louisville", "local", "tourism", "city"),
     ("louisville", "neighborhood", "local expert")),
    ("context_provision", ("context",), ("context provider", "background")),
    ("agent_enforcement", ("enforc", "policy", "guard"), ("rule", "enforce", "allowed")),
    ("fast_agent", ("fast", "quick", "agent"), ("fast", "brief", "concise")),
)


def infer_category(name: str, system: str | None = None) -> tuple[str | None, str]:
    """(category, the rule that decided it) — (None, reason) when nothing matches."""
    stem = re.sub(r"[:@].*$", "", name.lower())
    for category, name_words, _ in RULES:
        for word in name_words:
            if word in stem:
                return category, f"name contains {word!r}"
    text = (system or "").lower()
    for category, _, system_words in RULES:
        for word in system_words:
            if word in text:
                return category, f"SYSTEM mentions {word!r}"
    return None, "no rule matched"


def category_with_rule(config, name: str, system: str | None = None,
                       ) -> tuple[str | None, str]:
    """mirador.yaml first, then the rules; with the reason, for reports."""
    configured = config.category(name)
    if configured:
        return configured, "mirador.yaml"
    return infer_category(name, system)


def category_for(config, name: str, system: str | None = None) -> str | None:
    return category_with_rule(config, name, system)[0]
