"""The one exception a broken product rule raises, and how views answer it."""


class RuleViolation(Exception):
    """A product rule refused an action.

    `rule` is the id in RULES.md; `message` is a sentence a partner understands; `conflict` says
    the state moved on (HTTP 409) rather than the input breaking a rule (HTTP 422).
    """

    def __init__(self, rule: str, message: str, *, conflict: bool = False, field: str | None = None):
        super().__init__(message)
        self.rule = rule
        self.message = message
        self.conflict = conflict
        self.field = field

    @property
    def status(self) -> int:
        return 409 if self.conflict else 422

    def __str__(self) -> str:
        return self.message


class RuleViolations(Exception):
    """Several refusals at once (K9: each refused cart line says why)."""

    def __init__(self, violations: dict):
        super().__init__("; ".join(str(v) for v in violations.values()))
        self.violations = violations
