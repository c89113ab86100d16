"""The token overheads of OpenAI's chat format, shared by the estimate and the upper bound.

OpenAI cookbook, "How to count tokens with tiktoken" (gpt-3.5-turbo-0613 and later models).
"""

from __future__ import annotations

from typing import Final

TOKENS_PER_MESSAGE: Final = 3  # <|start|>{role}<|message|>{content}<|end|>
TOKENS_PER_NAME: Final = 1
REPLY_PRIMING_TOKENS: Final = 3  # every reply is primed with <|start|>assistant<|message|>
