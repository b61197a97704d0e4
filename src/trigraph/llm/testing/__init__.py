"""A small OpenAI-compatible token server, for tests, demos and offline examples.

``async with open_token_server() as server:`` serves ``POST
{server.base_url}/chat/completions`` on 127.0.0.1 from a Trio task: it answers
every prompt with a short story made from the prompt's words, one word per
token, streamed as Server-Sent Events exactly as OpenAI does (a role chunk,
content chunks, a finish chunk, an optional usage chunk, ``data: [DONE]``).
The answer is deterministic, so a test can compare it whole.

A :class:`Script` makes the server misbehave on purpose: an error status,
a stall or a cut in the middle of an answer. The server counts connections,
and the answers a client left before their end, so a test can check that the
client hung up. It speaks HTTP/1.1 through ``h11`` and needs nothing else.

Example:
  >>> import trio
  >>> from trigraph.llm import ChatModel
  >>> from trigraph.llm.testing import open_token_server
  >>> async def main():
  ...     async with open_token_server() as server:
  ...         async with ChatModel(server.base_url, "story") as model:
  ...             async with model.stream("a fox and a hedgehog") as tokens:
  ...                 return [text async for text in tokens][:4]
  >>> trio.run(main)
  ['Once', ' upon', ' a', ' time,']

.. versionadded:: 0.1
"""


from ..._util import fixup_module_metadata as _fixup
from ._answers import (
    ChatRequest as ChatRequest,
    Script as Script,
    ScriptSource as ScriptSource,
    story_tokens as story_tokens,
)
from ._server import (
    TokenServer as TokenServer,
    TokenServerStatistics as TokenServerStatistics,
    open_demo_model as open_demo_model,
    open_token_server as open_token_server,
    serve as serve,
)

_fixup(__name__, globals())
del _fixup
