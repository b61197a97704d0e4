"""Chat models for trigraph nodes: ``ChatModel`` streams an OpenAI-compatible
``/chat/completions`` answer token by token over ``httpx``, on Trio.

Inside a running node the tokens also reach the run's ``"messages"`` stream
as ``trigraph.events.Token`` events. ``trigraph.llm.testing`` ships a local
token server speaking the same protocol, for tests and offline demos.
"""

from .._util import fixup_module_metadata as _fixup
from ._client import ChatModel as ChatModel
from ._errors import LLMError as LLMError

_fixup(__name__, globals())
del _fixup
