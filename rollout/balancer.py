"""Our own router: a least-outstanding-requests HTTP balancer over SGLang (or embedded) engines.

Run: python -m rollout.balancer --worker-urls http://h:p1 http://h:p2 --port 30000 [--request-timeout-s 3600]

/generate goes to the healthy worker with the fewest requests in flight. When a worker fails mid-request
(connection refused or reset), it is marked unhealthy and the request is sent to another worker; a health
loop brings workers back once they answer /health again. /flush_cache goes to every worker. Workers are
listed, added and removed with sglang-router's API: GET /workers, POST /workers {"url"}, DELETE
/workers/{id}. Like sglang-router, it has no /abort_request: aborts go to the engines directly.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import uuid

import aiohttp
from aiohttp import web

log = logging.getLogger("rollout.balancer")

BROADCAST_PATHS = ("/flush_cache",)


class NoHealthyWorker(RuntimeError):
    pass


class LeastOutstandingBalancer:
    def __init__(self, worker_urls: list[str], health_interval_s: float = 0.5, max_attempts: int = 20,
                 request_timeout_s: float | None = None):
        self.request_timeout_s = request_timeout_s
        self.outstanding: dict[str, int] = {url.rstrip("/"): 0 for url in worker_urls}
        self.healthy: dict[str, bool] = {url: True for url in self.outstanding}
        self.health_interval_s = health_interval_s
        self.max_attempts = max_attempts
        self._session: aiohttp.ClientSession | None = None
        self._changed = asyncio.Condition()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 30)
        app.router.add_get("/health", self.health)
        app.router.add_get("/workers", self.list_workers)
        app.router.add_post("/workers", self.add_worker)
        app.router.add_delete("/workers/{worker_id}", self.remove_worker)
        for path in BROADCAST_PATHS:
            app.router.add_route("*", path, self.broadcast)
        app.router.add_route("*", "/{tail:.*}", self.forward)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        return app

    async def _start(self, app: web.Application) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.request_timeout_s),
                                              connector=aiohttp.TCPConnector(limit=0))
        app["health_loop"] = asyncio.get_running_loop().create_task(self._health_loop())

    async def _stop(self, app: web.Application) -> None:
        app["health_loop"].cancel()
        await self._session.close()

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self.health_interval_s)
            for url in [u for u, ok in self.healthy.items() if not ok]:
                if await self._answers_health(url):
                    log.info("worker %s is healthy again", url)
                    async with self._changed:
                        if url in self.healthy:  # not removed while its health was asked
                            self.healthy[url] = True
                        self._changed.notify_all()

    async def _answers_health(self, url: str) -> bool:
        try:
            async with self._session.get(f"{url}/health", timeout=aiohttp.ClientTimeout(total=2)) as resp:
                return resp.status == 200
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return False

    async def _pick(self) -> str:
        """The healthy worker with the fewest requests in flight; waits while none is healthy."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: any(self.healthy.values())), timeout=60)
            url = min((u for u, ok in self.healthy.items() if ok), key=lambda u: self.outstanding[u])
            self.outstanding[url] += 1
            return url

    async def forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        for _ in range(self.max_attempts):
            try:
                url = await self._pick()
            except asyncio.TimeoutError:
                break
            try:
                async with self._session.request(request.method, f"{url}{request.rel_url}", data=body,
                                                 headers={"Content-Type": "application/json"}) as resp:
                    return web.Response(status=resp.status, body=await resp.read(),
                                        content_type=resp.content_type)
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as e:
                log.warning("worker %s failed on %s (%s); resubmitting elsewhere", url, request.rel_url, e)
                self._mark_unhealthy(url)
            finally:
                if url in self.outstanding:  # a worker removed meanwhile is not counted any more
                    self.outstanding[url] -= 1
        return web.json_response({"error": {"message": "no healthy worker answered"}}, status=503)

    async def broadcast(self, request: web.Request) -> web.Response:
        body = await request.read()
        statuses = await asyncio.gather(*(self._send(request.method, url, request.rel_url, body)
                                          for url, ok in self.healthy.items() if ok))
        ok = all(s < 400 for s in statuses)
        return web.json_response({"success": ok, "statuses": statuses}, status=200 if ok else 502)

    async def _send(self, method: str, url: str, rel_url, body: bytes) -> int:
        try:
            async with self._session.request(method, f"{url}{rel_url}", data=body or None,
                                             headers={"Content-Type": "application/json"}) as resp:
                return resp.status
        except aiohttp.ClientConnectionError:
            self._mark_unhealthy(url)
            return 503

    def _mark_unhealthy(self, url: str) -> None:
        if url in self.healthy:  # a removed worker stays removed
            self.healthy[url] = False

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(status=200 if any(self.healthy.values()) else 503, text="OK")

    async def list_workers(self, request: web.Request) -> web.Response:
        return web.json_response({"workers": [{"id": worker_id(u), "url": u, "is_healthy": self.healthy[u],
                                               "load": n} for u, n in self.outstanding.items()]})

    async def add_worker(self, request: web.Request) -> web.Response:
        body = await request.json()
        if not isinstance(body, dict) or not body.get("url"):
            return web.json_response({"error": {"message": 'POST /workers needs {"url": "http://host:port"}'}},
                                     status=400)
        url = body["url"].rstrip("/")
        async with self._changed:
            self.outstanding.setdefault(url, 0)
            self.healthy[url] = True
            self._changed.notify_all()
        return web.json_response({"status": "accepted", "worker_id": worker_id(url), "url": url}, status=202)

    async def remove_worker(self, request: web.Request) -> web.Response:
        wanted = request.match_info["worker_id"]
        url = next((u for u in self.outstanding if worker_id(u) == wanted), None)
        if url is None:
            return web.json_response({"error": {"message": f"no worker with id {wanted}"}}, status=404)
        self.healthy.pop(url, None)
        self.outstanding.pop(url, None)
        return web.json_response({"status": "accepted", "worker_id": wanted}, status=202)


def worker_id(url: str) -> str:
    """A stable id per worker URL, in the form sglang-router's ids take (a UUID)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, url))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker-urls", nargs="+", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=30000)
    parser.add_argument("--request-timeout-s", type=float, default=None,
                        help="how long a forwarded request may take (default: no limit)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    balancer = LeastOutstandingBalancer(args.worker_urls, request_timeout_s=args.request_timeout_s)
    web.run_app(balancer.app(), host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
