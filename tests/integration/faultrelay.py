"""A TCP relay between vecgate and the database that injects network faults
on command, for the fault tests (test_faults.py).

The relay forwards bytes unchanged (TLS included: it never looks inside), so
what vecgate sees is exactly what a broken network or a dying server would
show it. It runs an asyncio loop on its own thread; the test thread calls the
methods below, which are safe to call from any thread.

Faults:
  cut(n, conns)    the next `conns` connections that carry server bytes are
                   closed (FIN both ways) after `n` more bytes from the server,
                   that is in the middle of whatever the server was sending
  stall(seconds)   nothing is forwarded, in either direction, on any
                   connection, for that long (a network partition that heals)
  delay(seconds)   every chunk waits this long before it is forwarded (0 ends it)
  reset(conns)     `conns` of the connections open now (None: all) are reset:
                   SO_LINGER 0 and close, so both peers get an RST
  refuse(on)       stop listening (new connections get ECONNREFUSED) or listen again
"""
import asyncio
import socket
import struct
import threading
import time


class _Link:
    """One client connection and its connection to the server."""

    def __init__(self, relay, cr, cw, sr, sw):
        self.relay = relay
        self.cr, self.cw, self.sr, self.sw = cr, cw, sr, sw
        self.cut_budget = None  # bytes from the server still forwarded before a cut
        self.server_bytes = 0
        self.closed = False

    def close(self, rst=False):
        if self.closed:
            return
        self.closed = True
        for w in (self.cw, self.sw):
            if rst:
                sock = w.transport.get_extra_info("socket")
                if sock is not None:
                    try:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    except OSError:
                        pass
                w.transport.abort()
            else:
                w.close()
        self.relay._links.discard(self)

    async def pump(self, reader, writer, from_server):
        try:
            while not self.closed:
                data = await reader.read(65536)
                if not data:
                    break
                await self.relay._flowing.wait()
                if self.relay._delay:
                    await asyncio.sleep(self.relay._delay)
                    await self.relay._flowing.wait()
                if self.closed:
                    break
                if from_server:
                    self.server_bytes += len(data)
                    if self.cut_budget is None and self.relay._cuts_armed > 0:
                        self.relay._cuts_armed -= 1
                        self.cut_budget = self.relay._cut_after
                    if self.cut_budget is not None:
                        if len(data) >= self.cut_budget:
                            writer.write(data[:self.cut_budget])
                            await writer.drain()
                            self.relay.cuts_done += 1
                            self.close()
                            break
                        self.cut_budget -= len(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            # One side ended: end the other as a TCP relay does (FIN after the data).
            if not self.closed:
                self.close()


class FaultRelay:
    def __init__(self, target_host, target_port, host="127.0.0.1"):
        self.target = (target_host, target_port)
        self.host = host
        self.port = None
        self.accepted = 0
        self.cuts_done = 0
        self._links = set()
        self._delay = 0.0
        self._cut_after = 0
        self._cuts_armed = 0
        self._server = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="faultrelay")

    # ---- lifecycle ----

    def start(self):
        self._thread.start()
        self._call(self._init())
        return self

    def stop(self):
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _call(self, coro, timeout=10):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _init(self):
        self._flowing = asyncio.Event()
        self._flowing.set()
        await self._listen()

    async def _listen(self):
        self._server = await asyncio.start_server(self._accept, self.host, self.port or 0,
                                                  reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _shutdown(self):
        self._flowing.set()
        if self._server:
            self._server.close()
        for link in list(self._links):
            link.close()
        # End the pumps and half-made links before the loop stops, so that no
        # task is left pending.
        me = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not me]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _accept(self, cr, cw):
        self.accepted += 1
        try:
            sr, sw = await asyncio.open_connection(*self.target)
        except OSError:
            cw.transport.abort()
            return
        except asyncio.CancelledError:
            cw.transport.abort()
            raise
        link = _Link(self, cr, cw, sr, sw)
        self._links.add(link)
        await asyncio.gather(link.pump(cr, sw, False), link.pump(sr, cw, True))

    # ---- faults ----

    def cut(self, after_bytes, conns=1):
        """Cut the next `conns` connections that receive server bytes after
        `after_bytes` more of them."""
        async def arm():
            self._cut_after = after_bytes
            self._cuts_armed = conns
        self._call(arm())

    def disarm(self):
        async def go():
            self._cuts_armed = 0
        self._call(go())

    def stall(self, seconds):
        """Forward nothing for `seconds` (returns at once)."""
        async def go():
            self._flowing.clear()
            self._loop.call_later(seconds, self._flowing.set)
        self._call(go())

    def delay(self, seconds):
        async def go():
            self._delay = seconds
        self._call(go())

    def reset(self, conns=None):
        """RST `conns` open connections (those that carried most server bytes
        first: they belong to sessions, not to idle spares); None: all."""
        async def go():
            links = sorted(self._links, key=lambda l: -l.server_bytes)
            chosen = links if conns is None else links[:conns]
            for link in chosen:
                link.close(rst=True)
            return len(chosen)
        return self._call(go())

    def refuse(self, on=True):
        async def go():
            if on and self._server:
                # (Not wait_closed(): from Python 3.12 on it also waits for the
                # connections already accepted, which stay open on purpose.)
                self._server.close()
                self._server = None
            elif not on and not self._server:
                for _ in range(50):
                    try:
                        await self._listen()
                        return
                    except OSError:  # the port's old socket is still going away
                        await asyncio.sleep(0.1)
                raise RuntimeError("relay could not listen again")
        self._call(go())

    def open_links(self):
        async def go():
            return len(self._links)
        return self._call(go())


def wait_until(pred, timeout, step=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()
