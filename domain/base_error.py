"""The one root of every error OrderFlow raises on purpose, in every layer.

It imports nothing, so the domain (which imports nothing of ours) can derive from it too.
`code` names the kind of error (an API answers with the problem type of that name);
`detail` tells a person what happened."""


class OrderFlowError(Exception):
    code = "orderflow-error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail
