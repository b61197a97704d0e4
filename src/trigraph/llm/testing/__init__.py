"""A small OpenAI-compatible token server, for tests, demos and offline examples.

``async with open_token_server() as server:`` serves ``POST
{server.base_url}/chat/completions`` on 127.0.0.1 from a Trio task: it answers
every prompt with a short story made from the prompt's words, one word per
token, streamed as Server-Sent Events exactly as OpenAI does (a role chunk,
content chunks, a finish chunk, an optional usage chunk, ``data: [DONE]``).
The answer is deterministic, so a test can compare it whole.

A :class:`Script` makes the server misbehave on purpose: an error status,
a stall or a cut in the middle of an answer. It also scripts a model that
calls tools, so an agent can be tested offline: give the server a list of
scripts, one per turn of the conversation (each text and/or tool calls),
and it streams each turn's calls exactly as OpenAI does, or with the
deviations of real servers (:data:`QUIRKS`: a whole call in one chunk,
repeated ids and names, every call at index 0, ``finish_reason: "stop"``,
...). A request gets the script of its turn, the number of assistant
messages in its history, so a resumed run is answered the same way. The server counts connections,
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

Testing an agent offline, with a model that first calls a tool (its whole
call in one chunk, as Ollama sends it) and then answers:

  >>> from trigraph.agents import create_agent
  >>> def get_weather(city: str) -> str:
  ...     '''Current weather of a city.'''
  ...     return "12 C"
  >>> turns = [Script(tool_calls=[("get_weather", {"city": "Paris"})], quirks={"whole_calls"}),
  ...          Script(answer="It is 12 C in Paris.")]
  >>> async def agent_test():
  ...     async with open_token_server(script=turns) as server:
  ...         async with ChatModel(server.base_url) as model:
  ...             agent = create_agent(model, [get_weather])
  ...             final = await agent.ainvoke({"messages": ["Weather in Paris?"]})
  ...     return [m.text for m in final["messages"]]
  >>> trio.run(agent_test)
  ['Weather in Paris?', '', '12 C', 'It is 12 C in Paris.']

.. versionadded:: 0.1
.. versionchanged:: 0.2
   Scripts of tool calls, and conversations (a list of scripts).
"""


from ..._util import fixup_module_metadata as _fixup
from ._answers import (
    QUIRKS as QUIRKS,
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
