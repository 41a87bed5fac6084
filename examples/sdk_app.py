"""A small LLM "app" instrumented with ``ingestor.sdk``: copy it, replace the fake model.

Run it against the local stack::

    make run                                   # terminal 1: broker, worker, ClickHouse
    .venv/bin/python examples/sdk_app.py       # terminal 2

The tracker finds the broker by itself: ``INGESTOR_KAFKA_BOOTSTRAP`` if set, else the address
the running ``ingestor up`` writes to ``$INGESTOR_DATA_DIR/kafka-bootstrap``. The app needs
neither: if no broker is there, it runs the same and says what it could not send.

What it shows: an agent run of numbered steps, prompt calls with token usage (their text is
sized and hashed, never sent: ``capture_text=False``), tool calls (one decorated, one failing),
an output check, a hallucination flag, and the counters at the end. Then::

    .venv/bin/ingestor report events           # what it sent
    .venv/bin/ingestor report alerts           # with a budget, see below

Budget alerts: each answer reads a 12k-token context (about $0.036 at the price file's rates), so
a run spends about $0.18 for ``user-7``. Start the stack with ``INGESTOR_BUDGETS=user:1h:0.10
make run`` and the worker stores one ``cost_threshold_exceeded`` event when the third answer
takes the user past $0.10 in the hour; a second run in the same hour adds none.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys

from ingestor.sdk import Tracker

tracker = Tracker(project_id="support-bot", user_id="user-7", env="dev", tags=["example"])


CONTEXT_TOKENS = 12_000  # system prompt, order history and policies sent with every question


async def fake_model(prompt: str) -> tuple[str, int, int]:
    """Stands in for an LLM client call: (answer, input tokens, output tokens)."""
    await asyncio.sleep(random.uniform(0.01, 0.05))
    answer = f"Order {random.randint(100, 999)} shipped yesterday."
    return answer, CONTEXT_TOKENS + len(prompt) // 4, len(answer) // 4


@tracker.tool("search_orders")
async def search_orders(customer: str) -> list[str]:
    await asyncio.sleep(0.01)
    return [f"{customer}-order-{i}" for i in range(3)]


async def lookup_invoice(order: str) -> str:
    with tracker.tool("lookup_invoice", tool_call_id=f"call-{order}"):
        raise TimeoutError(f"invoice service did not answer for {order}")


async def answer(question: str, session_id: str) -> str:
    with tracker.run(session_id=session_id):
        with tracker.step("plan", step_type="plan", agent_name="support"):
            orders = await search_orders("cust-42")
        # The app copes with a failing tool; the SDK records the failed call and the error.
        with (
            tracker.step("fetch invoice", step_type="tool", agent_name="support"),
            contextlib.suppress(TimeoutError),
        ):
            await lookup_invoice(orders[0])
        with tracker.step("respond", step_type="respond", agent_name="support"):
            prompt = f"Customer asks: {question}\nOrders: {orders}"
            async with tracker.prompt("claude-sonnet-4-20250514", prompt=prompt) as call:
                text, tokens_in, tokens_out = await fake_model(prompt)
                call.response(
                    text, tokens_input=tokens_in, tokens_output=tokens_out, finish_reason="end_turn"
                )
        tracker.check("shipped" in text, "answer states the shipping status", actual=len(text))
        if random.random() < 0.3:
            tracker.hallucination("order-id-not-in-context", confidence=0.8, severity="high")
        return text


async def main() -> int:
    for i in range(5):
        print(await answer("Where is my order?", session_id=f"session-{i}"))
    delivered = await tracker.aflush(10)
    stats = tracker.stats()
    print(
        f"sent {stats.sent} events, {stats.pending} still queued, {stats.dropped} dropped, "
        f"{stats.failed} failed" + ("" if delivered else " (is `make run` running?)")
    )
    await tracker.aclose(2)
    return 0 if delivered else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
