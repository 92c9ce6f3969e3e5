"""Micro-batching across concurrent requests: one compiled call for many clients' inputs.

Requests put one example each into the queue of its model; a worker per model waits at most
`max_wait` seconds after the first example of a batch arrives (or until `max_batch` examples
wait), stacks the examples of one input shape (a batch must be rectangular; other shapes wait
for the next round, oldest first) and runs the model's predictor once, in a thread of its own so
that the event loop keeps accepting requests. Each request gets its own row back; an example
never fails its neighbours (only valid inputs reach a batch: bitstreams are decoded and checked
per request, before).
"""

import asyncio
import collections
import concurrent.futures

import numpy as np


class MicroBatcher:
    """Batches `submit`ted examples for `predict(batch) -> rows` (see the module docstring)."""

    def __init__(self, predict, max_batch=32, max_wait=0.005):
        self.predict, self.max_batch, self.max_wait = predict, int(max_batch), float(max_wait)
        self.pending = collections.deque()  # (example, future), arrival order
        self.wakeup = None
        self.worker = None
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        self.batch_sizes = collections.Counter()  # sizes formed so far

    async def submit(self, example):
        """The predictor's row for one example (awaits its batch)."""
        loop = asyncio.get_running_loop()
        if self.worker is None:
            self.wakeup = asyncio.Event()
            self.worker = loop.create_task(self._run())
        future = loop.create_future()
        self.pending.append((example, future))
        self.wakeup.set()
        return await future

    def _take(self):
        """Up to max_batch waiting examples of the oldest one's shape, in arrival order."""
        shape = self.pending[0][0].shape
        batch, rest = [], collections.deque()
        while self.pending:
            item = self.pending.popleft()
            if item[0].shape == shape and len(batch) < self.max_batch:
                batch.append(item)
            else:
                rest.append(item)
        self.pending = rest
        return batch

    async def _run(self):
        loop = asyncio.get_running_loop()
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            if len(self.pending) < self.max_batch:
                await asyncio.sleep(self.max_wait)  # let concurrent requests join the batch
            while self.pending:
                batch = [item for item in self._take() if not item[1].cancelled()]
                if not batch:
                    continue
                self.batch_sizes[len(batch)] += 1
                inputs = np.stack([example for example, _ in batch])
                try:
                    rows = await loop.run_in_executor(self.executor, self.predict, inputs)
                except Exception as error:  # a failure of the model, not of one input
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for (_, future), row in zip(batch, rows):
                    if not future.done():
                        future.set_result(row)
